/**
 * An in-process Kubernetes API server double for meshca's tests. No real API server can run on
 * the build machine, so this implements exactly the REST paths and watch semantics meshca uses,
 * over plain HTTP on 127.0.0.1 (kubeconfig with insecure-skip-tls-verify, as client-node requires
 * for http:// servers).
 *
 * Covered:
 * - certificates.k8s.io/v1 certificatesigningrequests: create (generateName, spec.username/uid/
 *   groups set from the caller, status dropped, validation of request PEM, signerName, usages,
 *   expirationSeconds >= 600), get, list, watch, delete, PUT /approval (Approved/Denied only,
 *   mutually exclusive), PUT /status (certificate and non-approval conditions only; certificate
 *   must be PEM CERTIFICATE blocks, only on an approved CSR, immutable once set).
 * - v1 secrets and configmaps in namespaces: create, get, list, watch, replace, delete.
 * - coordination.k8s.io/v1 leases in namespaces: create, get, replace, delete.
 * - authentication.k8s.io/v1 tokenreviews: create, against a token table with audiences
 *   (status.audiences is the intersection with spec.audiences; an "audience-unaware" token
 *   authenticates without status.audiences, as an old authenticator would).
 * - Optimistic concurrency: a PUT whose metadata.resourceVersion is stale gets 409 Conflict;
 *   create of an existing name gets 409 AlreadyExists; errors are v1 Status objects.
 * - list returns the collection resourceVersion; watch=true streams ADDED/MODIFIED/DELETED from
 *   a resourceVersion (or the current objects as ADDED when none is given), honours
 *   timeoutSeconds, and answers a resourceVersion older than compact() with an ERROR event
 *   carrying a 410 Expired Status, as the real server does.
 * - fieldSelector metadata.name=<name> on list and watch (what the RA mode uses).
 * - What real kubectl needs (scripts/kube-api-double.mjs): legacy discovery, an OpenAPI v3 index
 *   whose PATCH operations declare fieldValidation (without it kubectl validates client-side and
 *   needs full schemas), PATCH with application/merge-patch+json, GET of any namespace, and the
 *   protobuf body `kubectl certificate approve` PUTs to /approval.
 *
 * Not covered: authentication and authorization (every request is allowed; the bearer token only
 * names the caller recorded in a CSR), admission, namespaces as objects (any namespace exists),
 * label selectors, other field selectors, JSON and strategic merge patches (415), bookmarks,
 * pagination (limit/continue), server-side apply, field validation (unknown fields are kept),
 * Table output other than for CSRs (kubectl prints NAME and AGE), finalizers and graceful deletion,
 * generation/observedGeneration, protobuf bodies other than a CSR's on /approval and /status
 * (415; so kubectl create secret/configmap fail: use kubectl create -f), and every other resource
 * or subresource.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { csrTable, wantsTable } from './table.js';
import { approval, replace, statusUpdate, validateCsr } from './rules.js';
import { decodeCsr, PROTOBUF } from './protobuf.js';
import { checkPatchType, mergePatch } from './patch.js';
import { discovery, namespaceObject, openapi } from './discovery.js';
import { ApiError, ObjectStore, type KubeObject, type ResourceKey, type WatchEvent } from './store.js';

export interface TokenEntry {
  username: string;
  uid?: string;
  groups?: string[];
  audiences: string[];
  /** Authenticates without reporting audiences (an audience-unaware authenticator). */
  audienceUnaware?: boolean;
}

export interface RequestRecord {
  method: string;
  path: string;
  user: string;
}

/** Returns an HTTP status to fail a request with (fault injection), or undefined to serve it. */
export type Fault = (r: { method: string; path: string; user: string }) => number | undefined;

const API_AUDIENCE = 'https://kubernetes.default.svc.cluster.local';

const GROUPS: Record<string, { apiVersion: string; kind: string }> = {
  certificatesigningrequests: { apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest' },
  secrets: { apiVersion: 'v1', kind: 'Secret' },
  configmaps: { apiVersion: 'v1', kind: 'ConfigMap' },
  leases: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease' },
};

interface Route {
  key: ResourceKey;
  name?: string;
  sub?: 'status' | 'approval';
}

/** Maps a path to a resource; undefined for anything the double does not serve. */
function route(path: string): Route | 'tokenreviews' | undefined {
  if (path === '/apis/authentication.k8s.io/v1/tokenreviews') return 'tokenreviews';
  let m = /^\/apis\/certificates\.k8s\.io\/v1\/certificatesigningrequests(?:\/([^/]+)(?:\/(status|approval))?)?$/.exec(path);
  if (m) return { key: { resource: 'certificatesigningrequests' }, name: m[1], sub: m[2] as Route['sub'] };
  m = /^\/api\/v1\/namespaces\/([^/]+)\/(secrets|configmaps)(?:\/([^/]+))?$/.exec(path);
  if (m) return { key: { resource: m[2], namespace: m[1] }, name: m[3] };
  m = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/.exec(path);
  if (m) return { key: { resource: 'leases', namespace: m[1] }, name: m[2] };
  return undefined;
}

function status(code: number, reason: string, message: string): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

export class K8sDouble {
  readonly store = new ObjectStore();
  readonly tokens = new Map<string, TokenEntry>();
  /** Bearer tokens of API clients -> the username the double records for them. */
  readonly users = new Map<string, string>();
  readonly requests: RequestRecord[] = [];
  readonly faults: Fault[] = [];
  private readonly watches = new Set<ServerResponse>();
  private server!: Server;
  url = '';

  static async start(port = 0): Promise<K8sDouble> {
    const d = new K8sDouble();
    d.server = createServer((req, res) => void d.handle(req, res));
    await new Promise<void>((r, reject) => {
      d.server.once('error', reject);
      d.server.listen(port, '127.0.0.1', r);
    });
    d.url = `http://127.0.0.1:${(d.server.address() as AddressInfo).port}`;
    return d;
  }

  /** Writes a kubeconfig pointing at the double; `token` names the caller (see `users`). */
  writeKubeconfig(path: string, token = 'meshca-token', namespace = 'meshca-system'): string {
    writeFileSync(
      path,
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: double',
        'clusters:',
        '- name: double',
        `  cluster: { server: "${this.url}", insecure-skip-tls-verify: true }`,
        'users:',
        '- name: meshca',
        `  user: { token: ${token} }`,
        'contexts:',
        '- name: double',
        `  context: { cluster: double, user: meshca, namespace: ${namespace} }`,
        '',
      ].join('\n'),
    );
    return path;
  }

  /** Closes every open watch stream (clients must re-watch, as after an API server restart). */
  dropWatches(): void {
    for (const w of this.watches) w.destroy();
    this.watches.clear();
  }

  get openWatches(): number {
    return this.watches.size;
  }

  /** Stops answering (connections refused, as when the API server is down); the objects are kept for `resume`. */
  async pause(): Promise<void> {
    await this.close();
  }

  /** Listens again on the same address after `pause`, with the same objects. */
  async resume(): Promise<void> {
    const port = Number(new URL(this.url).port);
    await new Promise<void>((r, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        r();
      });
    });
  }

  async close(): Promise<void> {
    this.dropWatches();
    await new Promise<void>((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }

  // --- helpers for tests, acting as an administrator would with kubectl ---

  csr(name: string): KubeObject | undefined {
    return this.store.get({ resource: 'certificatesigningrequests' }, name);
  }

  /** `kubectl certificate approve|deny NAME`. */
  decide(name: string, type: 'Approved' | 'Denied', reason = type === 'Approved' ? 'KubectlApprove' : 'KubectlDeny'): KubeObject {
    return this.store.update({ resource: 'certificatesigningrequests' }, name, (o) => {
      const st = (o.status ?? {}) as { conditions?: Record<string, unknown>[] };
      const now = new Date().toISOString();
      st.conditions = [
        ...(st.conditions ?? []),
        {
          type,
          status: 'True',
          reason,
          message: `This CSR was ${type.toLowerCase()} by the test`,
          lastUpdateTime: now,
          lastTransitionTime: now,
        },
      ];
      return { ...o, status: st };
    });
  }

  // --- the HTTP side ---

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://double');
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const user = (bearer && this.users.get(bearer)) ?? (bearer ? `token:${bearer.slice(0, 8)}` : 'system:anonymous');
    const method = req.method ?? 'GET';
    this.requests.push({ method, path: url.pathname + (url.search ? url.search : ''), user });
    const send = (code: number, obj: unknown) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    try {
      const body = await readBody(req);
      for (const f of this.faults) {
        const code = f({ method, path: url.pathname, user });
        if (code !== undefined) return send(code, status(code, 'InternalError', `injected fault for ${method} ${url.pathname}`));
      }
      const doc =
        method === 'GET'
          ? (discovery(url.pathname, req.headers.host ?? '') ?? namespaceObject(url.pathname) ?? openapi(url.pathname))
          : undefined;
      if (doc) return send(200, doc);
      const r = route(url.pathname);
      if (!r) return send(404, status(404, 'NotFound', `the double does not serve ${url.pathname}`));
      if (r === 'tokenreviews') {
        if (method !== 'POST') return send(405, status(405, 'MethodNotAllowed', 'tokenreviews: create only'));
        return send(201, this.tokenReview(body));
      }
      const meta = GROUPS[r.key.resource];
      const typed = (o: KubeObject) => ({ apiVersion: meta.apiVersion, kind: meta.kind, ...o });
      if (!r.name) {
        if (method === 'POST') return send(201, typed(this.create(r.key, body, user)));
        if (method !== 'GET') return send(405, status(405, 'MethodNotAllowed', `${method} on a collection`));
        const selector = fieldSelector(url.searchParams.get('fieldSelector'));
        if (url.searchParams.get('labelSelector')) throw new ApiError(400, 'BadRequest', 'the double supports no label selectors');
        if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1')
          return this.watch(r.key, url, selector, res, typed);
        const items = this.store.list(r.key).filter(selector).map(typed);
        if (wantsTable(req, r.key.resource)) return send(200, csrTable(items, String(this.store.resourceVersion)));
        return send(200, {
          apiVersion: meta.apiVersion,
          kind: `${meta.kind}List`,
          metadata: { resourceVersion: String(this.store.resourceVersion) },
          items,
        });
      }
      if (method === 'GET') {
        const o = this.store.get(r.key, r.name);
        if (!o) throw new ApiError(404, 'NotFound', `${r.key.resource} "${r.name}" not found`);
        if (wantsTable(req, r.key.resource)) return send(200, csrTable([o], String(this.store.resourceVersion)));
        return send(200, typed(o));
      }
      if (method === 'DELETE') {
        this.store.delete(r.key, r.name);
        return send(200, {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Success',
          details: { name: r.name, kind: r.key.resource },
        });
      }
      // Only the subresources take a protobuf body: the double decodes no spec or metadata beyond the name.
      if (isProtobuf(req) && !(method === 'PUT' && r.sub))
        throw new ApiError(415, 'UnsupportedMediaType', `the double takes protobuf only on PUT .../approval and .../status; send JSON`);
      if (method === 'PUT') {
        const rv = (body.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
        if (r.sub === 'approval') return send(200, typed(this.store.update(r.key, r.name, (cur) => approval(cur, body), rv)));
        if (r.sub === 'status') return send(200, typed(this.store.update(r.key, r.name, (cur) => statusUpdate(cur, body), rv)));
        return send(200, typed(this.store.update(r.key, r.name, (cur) => replace(r.key.resource, cur, body), rv)));
      }
      if (method === 'PATCH' && !r.sub) {
        checkPatchType(req.headers['content-type']);
        const rv = (body.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
        return send(
          200,
          typed(this.store.update(r.key, r.name, (cur) => replace(r.key.resource, cur, mergePatch(cur, body) as KubeObject), rv)),
        );
      }
      return send(405, status(405, 'MethodNotAllowed', `${method} ${url.pathname}`));
    } catch (e) {
      if (e instanceof ApiError) return send(e.code, status(e.code, e.reason, e.message));
      return send(500, status(500, 'InternalError', (e as Error).message));
    }
  }

  private create(key: ResourceKey, body: Record<string, unknown>, user: string): KubeObject {
    const obj = body as KubeObject;
    if (!obj.metadata) obj.metadata = {} as KubeObject['metadata'];
    if (key.resource === 'certificatesigningrequests') {
      validateCsr(obj);
      // The API server records who asked and ignores any status a client sends.
      obj.spec = { ...(obj.spec as object), username: user, uid: `uid-${user}`, groups: ['system:authenticated'] };
      delete obj.status;
    }
    if (key.namespace && obj.metadata.namespace && obj.metadata.namespace !== key.namespace) {
      throw new ApiError(400, 'BadRequest', 'the namespace of the object does not match the namespace on the request');
    }
    return this.store.create(key, obj);
  }

  private watch(
    key: ResourceKey,
    url: URL,
    selector: (o: KubeObject) => boolean,
    res: ServerResponse,
    typed: (o: KubeObject) => KubeObject,
  ): void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    // The real server sends the headers at once, before any event.
    res.flushHeaders();
    const write = (type: string, object: unknown) => res.write(`${JSON.stringify({ type, object })}\n`);
    const rvParam = url.searchParams.get('resourceVersion');
    const matches = (e: WatchEvent) => (key.namespace === undefined || e.object.metadata.namespace === key.namespace) && selector(e.object);
    const unsubscribe = this.store.subscribe((resource, e) => {
      if (resource === key.resource && matches(e)) write(e.type, typed(e.object));
    });
    this.watches.add(res);
    const end = () => {
      unsubscribe();
      this.watches.delete(res);
      clearTimeout(timer);
    };
    res.on('close', end);
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? 0);
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    if (!rvParam || rvParam === '0') {
      for (const o of this.store.list(key).filter(selector)) write('ADDED', typed(o));
      return;
    }
    const past = this.store.eventsSince(key.resource, Number(rvParam));
    if (!past) {
      write('ERROR', status(410, 'Expired', `too old resource version: ${rvParam} (${this.store.resourceVersion})`));
      res.end();
      return;
    }
    for (const e of past.filter(matches)) write(e.type, typed(e.object));
  }

  private tokenReview(body: Record<string, unknown>): Record<string, unknown> {
    const spec = (body.spec ?? {}) as { token?: string; audiences?: string[] };
    const entry = spec.token ? this.tokens.get(spec.token) : undefined;
    const wanted = spec.audiences && spec.audiences.length > 0 ? spec.audiences : [API_AUDIENCE];
    let st: Record<string, unknown>;
    if (!entry) st = { authenticated: false, error: '[invalid bearer token, token lookup failed]' };
    else if (entry.audienceUnaware)
      st = { authenticated: true, user: { username: entry.username, uid: entry.uid ?? 'u', groups: entry.groups ?? [] } };
    else {
      const inter = entry.audiences.filter((a) => wanted.includes(a));
      st =
        inter.length === 0
          ? {
              authenticated: false,
              error: `[invalid bearer token, token audiences ${JSON.stringify(entry.audiences)} is invalid for the target audiences ${JSON.stringify(wanted)}]`,
            }
          : {
              authenticated: true,
              user: { username: entry.username, uid: entry.uid ?? 'u', groups: entry.groups ?? [] },
              audiences: inter,
            };
    }
    return { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', metadata: { creationTimestamp: null }, spec, status: st };
  }
}

const isProtobuf = (req: IncomingMessage) => (req.headers['content-type'] ?? '').split(';')[0].trim() === PROTOBUF;

function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('end', () => {
      if (isProtobuf(req)) {
        try {
          return resolve(decodeCsr(Buffer.concat(chunks)));
        } catch (e) {
          return reject(e);
        }
      }
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text) return resolve({});
      try {
        resolve(JSON.parse(text) as Record<string, unknown>);
      } catch {
        reject(new ApiError(400, 'BadRequest', 'the request body is not JSON'));
      }
    });
  });
}

function fieldSelector(sel: string | null): (o: KubeObject) => boolean {
  if (!sel) return () => true;
  const m = /^metadata\.name=([^,]+)$/.exec(sel);
  if (!m) throw new ApiError(400, 'BadRequest', `the double supports only fieldSelector metadata.name=<name>, got ${sel}`);
  return (o) => o.metadata.name === m[1];
}
