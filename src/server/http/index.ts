import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { httpStatusOf, toMeshcaError } from '../../errors.js';
import { MeshcaError } from '../../pki/errors.js';
import type { Store } from '../../store/index.js';
import { auditDocument, caDocument, type CaView } from './api.js';
import { dashboardRoutes, type DashboardDeps } from './dashboard/index.js';
import { createLimitedServer, HTTP_LIMITS, type HttpLimits } from './limits.js';

/** Where /metrics comes from: one registry, or the aggregate of the worker processes. */
export interface MetricsSource {
  metrics(): Promise<string>;
  contentType: string;
}

export interface HttpDeps extends CaView {
  store: Store;
  registry: MetricsSource;
  /** Why the server cannot serve certificates yet, or undefined when it can. */
  notReady: () => string | undefined;
  /** Extra /readyz fields (the upstream CA's state); the status code still comes from notReady alone. */
  readyDetail?: () => Record<string, unknown>;
  now?: () => Date;
  log?: { error(obj: object, msg: string): void };
  /** The operator dashboard at / and GET /v1/dashboard (dashboard/). */
  dashboard?: DashboardDeps;
  limits?: HttpLimits;
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? `${JSON.stringify(body, null, 2)}\n` : String(body);
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// A stand-in CA (waiting for an issuer Secret) must not be published as the mesh's root.
function rootsUnknown(d: HttpDeps, res: ServerResponse): void {
  send(res, 503, { error: 'ca_not_ready', message: `no roots to publish yet: ${d.authority.notReadyReason() ?? 'the CA is starting'}` });
}

/** Health, readiness, Prometheus metrics and a read-only JSON API, on plain node:http. */
export function createHttpServer(d: HttpDeps): Server {
  const now = d.now ?? (() => new Date());
  const routes: Record<string, (req: IncomingMessage, url: URL, res: ServerResponse) => Promise<void> | void> = {
    '/healthz': (_q, _u, res) => send(res, 200, { status: 'ok' }),
    '/readyz': (_q, _u, res) => {
      const why = d.notReady();
      const extra = d.readyDetail?.();
      send(res, why ? 503 : 200, why ? { status: 'not ready', reason: why, ...extra } : { status: 'ready', ...extra });
    },
    '/metrics': async (_q, _u, res) => send(res, 200, await d.registry.metrics(), d.registry.contentType),
    '/v1/ca': (_q, _u, res) => (d.authority.rootsKnown() ? send(res, 200, caDocument(d, now())) : rootsUnknown(d, res)),
    '/v1/trust-bundle': (req, url, res) => {
      if (!d.authority.rootsKnown()) return rootsUnknown(d, res);
      const pems = d.authority.roots.map((r) => r.pem);
      const wantsPem = url.searchParams.get('format') === 'pem' || /application\/x-pem-file/.test(req.headers.accept ?? '');
      if (wantsPem) send(res, 200, pems.join(''), 'application/x-pem-file');
      else send(res, 200, { trustDomain: d.trustDomain, roots: pems });
    },
    '/v1/certificates': async (_q, url, res) => send(res, 200, await auditDocument(d.store, url.searchParams)),
    ...(d.dashboard ? dashboardRoutes(d.dashboard) : {}),
  };
  const limits = d.limits ?? HTTP_LIMITS;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let path = '';
    try {
      const target = req.url ?? '';
      const refused = targetProblem(target, limits.maxUrlBytes);
      if (refused) return send(res, refused.status, { error: refused.error, message: refused.message });
      let url: URL;
      try {
        // Prefixed rather than resolved against a base, so that "//x" stays a path, not a host.
        url = new URL(`http://localhost${target}`);
      } catch {
        return send(res, 400, { error: 'bad_url', message: 'the request target is not a valid URL path' });
      }
      path = url.pathname;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        if (hasBody(req)) res.setHeader('connection', 'close');
        return send(res, 405, { error: 'method_not_allowed', message: `${req.method} is not allowed; this API is read-only` });
      }
      if (hasBody(req)) {
        // Closing instead of reading: the body is never buffered, and the connection ends with it.
        res.setHeader('connection', 'close');
        return send(res, 413, { error: 'body_not_allowed', message: 'this API is read-only; requests must not have a body' });
      }
      const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
      if (!route) throw new MeshcaError('not_found', 'no_route', `no such endpoint ${path}`);
      await route(req, url, res);
    } catch (e) {
      const err = toMeshcaError(e);
      if (err.code === 'internal') d.log?.error({ err, path }, 'http request failed');
      send(res, httpStatusOf(err), { error: err.reason, message: err.message });
    }
  };
  return createLimitedServer((req, res) => {
    // The last line of defence: nothing a request does may throw out of the listener and end the process.
    handle(req, res).catch((e: unknown) => {
      d.log?.error({ err: e, path: req.url?.slice(0, 200) }, 'http request failed after the response began');
      if (!res.headersSent) send(res, 500, { error: 'internal', message: 'internal error' });
      else res.destroy();
    });
  }, limits);
}

/** A body announced by Content-Length (other than 0) or by Transfer-Encoding. */
function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
}

const DOT_SEGMENT = /(^|\/)\.\.?(\/|$)/;
const ENCODED_DOT_OR_SLASH = /%(2e|2f|5c)/i;

/**
 * Refuses request targets that are not a plain origin-form path: absolute-form ("http://x/"),
 * asterisk-form ("*"), over-long targets, and paths that a normaliser would rewrite (dot segments,
 * encoded dots or slashes, backslashes), so that no path reaches a route by a detour.
 */
export function targetProblem(target: string, maxUrlBytes: number): { status: number; error: string; message: string } | undefined {
  if (Buffer.byteLength(target) > maxUrlBytes)
    return { status: 414, error: 'uri_too_long', message: `the request target exceeds ${maxUrlBytes} bytes` };
  if (!target.startsWith('/'))
    return { status: 400, error: 'bad_request_target', message: 'the request target must be a path starting with "/"' };
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  if (DOT_SEGMENT.test(path) || ENCODED_DOT_OR_SLASH.test(path) || path.includes('\\')) {
    return { status: 400, error: 'bad_path', message: 'the path must not contain dot segments, encoded dots or slashes, or backslashes' };
  }
  return undefined;
}
