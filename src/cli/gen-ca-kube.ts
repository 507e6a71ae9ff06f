import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { clientNodeUsable, loadKubeconfig, type ApiTarget } from '../auth/kube-client.js';
import { MeshcaError, errorMessage } from '../pki/errors.js';

export interface CacertsSecret {
  kubeconfig?: string;
  context?: string;
  namespace: string;
  name: string;
  /** Replace an existing secret (getistio's overrideExistingCACertsSecret); otherwise refuse. */
  override: boolean;
}

export type SecretFiles = { name: string; data: string | Uint8Array }[];

type Outcome = 'created' | 'replaced';

/** Writes the Secret found absent (or replaceable) when it was opened. */
export type CacertsWriter = (files: SecretFiles) => Promise<Outcome>;

function defaultKubeconfig(): string {
  return process.env.KUBECONFIG?.split(':').find((p) => p !== '') ?? join(homedir(), '.kube', 'config');
}

function secretBody(s: CacertsSecret, files: SecretFiles, resourceVersion?: string): Record<string, unknown> {
  const data: Record<string, string> = {};
  for (const f of files) data[f.name] = Buffer.from(f.data).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name: s.name, namespace: s.namespace, ...(resourceVersion ? { resourceVersion } : {}) },
    data,
  };
}

function exists(s: CacertsSecret): MeshcaError {
  return new MeshcaError(
    'already_exists',
    'secret_exists',
    `secret ${s.namespace}/${s.name} already exists; set certificateParameters.secretOptions.overrideExistingCACertsSecret: true to replace it`,
  );
}

/** Names the server and the kubeconfig: "connect ECONNREFUSED" alone does not say which cluster was meant. */
function apiError(s: CacertsSecret, what: string, e: unknown, where: { server?: string; kubeconfig: string }): MeshcaError {
  const at = `${where.server ? ` at ${where.server}` : ''} (kubeconfig ${where.kubeconfig}${s.context ? `, context ${s.context}` : ''})`;
  return new MeshcaError('unavailable', 'kube_api', `cannot ${what} secret ${s.namespace}/${s.name}${at}: ${errorMessage(e)}`, {
    cause: e,
  });
}

/**
 * Reads the cacerts Secret once and returns the function that creates or replaces it, like
 * getistio. Called before anything is asked of AWS Private CA, so that an unusable kubeconfig, an
 * unreachable cluster or a Secret that may not be replaced costs no certificate.
 * @kubernetes/client-node 2.x cannot even be loaded before Node 22.19 (its undici needs newer
 * zlib), so on older Node the small built-in client from src/auth/kube-client.ts is used
 * (kubeconfig token or client certificate; no exec plugins).
 */
export async function openCacertsSecret(s: CacertsSecret): Promise<CacertsWriter> {
  const kubeconfig = s.kubeconfig ?? defaultKubeconfig();
  return clientNodeUsable() ? viaClientNode(s, kubeconfig) : viaBuiltin(s, builtinTarget(kubeconfig, s.context), kubeconfig);
}

async function viaClientNode(s: CacertsSecret, kubeconfig: string): Promise<CacertsWriter> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  try {
    kc.loadFromFile(kubeconfig);
    if (s.context) kc.setCurrentContext(s.context);
  } catch (e) {
    throw new MeshcaError('invalid_argument', 'bad_kubeconfig', `kubeconfig ${kubeconfig} cannot be used: ${errorMessage(e)}`, {
      cause: e,
    });
  }
  const where = { server: kc.getCurrentCluster()?.server, kubeconfig };
  const api = kc.makeApiClient(k8s.CoreV1Api);
  let current: { metadata?: { resourceVersion?: string } } | undefined;
  try {
    current = await api.readNamespacedSecret({ name: s.name, namespace: s.namespace });
  } catch (e) {
    if ((e as { code?: number }).code !== 404) throw apiError(s, 'read', e, where);
  }
  if (current && !s.override) throw exists(s);
  return async (files) => {
    try {
      if (current)
        await api.replaceNamespacedSecret({
          name: s.name,
          namespace: s.namespace,
          body: secretBody(s, files, current.metadata?.resourceVersion),
        });
      else await api.createNamespacedSecret({ namespace: s.namespace, body: secretBody(s, files) });
    } catch (e) {
      throw apiError(s, current ? 'replace' : 'create', e, where);
    }
    return current ? 'replaced' : 'created';
  };
}

/** loadKubeconfig reads the current context; another --context is selected through a private temporary copy. */
function builtinTarget(kubeconfig: string, context: string | undefined): ApiTarget {
  if (!context) return loadKubeconfig(kubeconfig);
  let doc: Record<string, unknown>;
  try {
    doc = parseYaml(readFileSync(kubeconfig, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new MeshcaError('invalid_argument', 'bad_kubeconfig', `kubeconfig ${kubeconfig} cannot be read: ${errorMessage(e)}`, {
      cause: e,
    });
  }
  const contexts = (doc.contexts as { name?: string }[] | undefined) ?? [];
  if (!contexts.some((c) => c.name === context)) {
    throw new MeshcaError('invalid_argument', 'bad_kubeconfig', `kubeconfig ${kubeconfig} has no context "${context}"`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'meshca-kube-'));
  try {
    const copy = join(dir, 'config');
    writeFileSync(copy, stringify({ ...doc, 'current-context': context }), { mode: 0o600 });
    return loadKubeconfig(copy);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function call(t: ApiTarget, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const url = new URL(path, t.server);
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string> = { accept: 'application/json' };
  if (data) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(data.length) });
  if (t.token) headers.authorization = `Bearer ${t.token}`;
  const opts = { method, headers, timeout: 10_000 };
  return new Promise((resolve, reject) => {
    const req =
      url.protocol === 'http:'
        ? httpRequest(url, opts)
        : httpsRequest(url, { ...opts, ca: t.ca, cert: t.cert, key: t.key, rejectUnauthorized: !t.insecure });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        } catch {
          /* a non-JSON error page: the status says enough */
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.end(data);
  });
}

function failed(r: { status: number; json: Record<string, unknown> }): Error {
  return new Error(`HTTP ${r.status}${typeof r.json.message === 'string' ? `: ${r.json.message}` : ''}`);
}

async function viaBuiltin(s: CacertsSecret, t: ApiTarget, kubeconfig: string): Promise<CacertsWriter> {
  const where = { server: t.server, kubeconfig };
  const base = `/api/v1/namespaces/${encodeURIComponent(s.namespace)}/secrets`;
  const got = await call(t, 'GET', `${base}/${encodeURIComponent(s.name)}`).catch((e: unknown) => {
    throw apiError(s, 'read', e, where);
  });
  if (got.status !== 200 && got.status !== 404) throw apiError(s, 'read', failed(got), where);
  const found = got.status === 200;
  if (found && !s.override) throw exists(s);
  const resourceVersion = (got.json.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
  return async (files) => {
    const r = await (
      found
        ? call(t, 'PUT', `${base}/${encodeURIComponent(s.name)}`, secretBody(s, files, resourceVersion))
        : call(t, 'POST', base, secretBody(s, files))
    ).catch((e: unknown) => {
      throw apiError(s, found ? 'replace' : 'create', e, where);
    });
    if (r.status < 200 || r.status >= 300) throw apiError(s, found ? 'replace' : 'create', failed(r), where);
    return found ? 'replaced' : 'created';
  };
}
