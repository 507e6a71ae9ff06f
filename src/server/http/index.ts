import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { httpStatusOf, toMeshcaError } from '../../errors.js';
import { MeshcaError } from '../../pki/errors.js';
import type { Store } from '../../store/index.js';
import { auditDocument, caDocument, type CaView } from './api.js';
import { dashboardRoutes, type DashboardDeps } from './dashboard/index.js';

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
  /** The operator dashboard at / and GET /v1/dashboard (issue 8; dashboard/). */
  dashboard?: DashboardDeps;
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? `${JSON.stringify(body, null, 2)}\n` : String(body);
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
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
    '/v1/ca': (_q, _u, res) => send(res, 200, caDocument(d, now())),
    '/v1/trust-bundle': (req, url, res) => {
      const pems = d.authority.roots.map((r) => r.pem);
      const wantsPem = url.searchParams.get('format') === 'pem' || /application\/x-pem-file/.test(req.headers.accept ?? '');
      if (wantsPem) send(res, 200, pems.join(''), 'application/x-pem-file');
      else send(res, 200, { trustDomain: d.trustDomain, roots: pems });
    },
    '/v1/certificates': async (_q, url, res) => send(res, 200, await auditDocument(d.store, url.searchParams)),
    ...(d.dashboard ? dashboardRoutes(d.dashboard) : {}),
  };
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = routes[url.pathname];
    void (async () => {
      try {
        if (!route) throw new MeshcaError('not_found', 'no_route', `no such endpoint ${url.pathname}`);
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          res.setHeader('allow', 'GET, HEAD');
          return send(res, 405, { error: 'method_not_allowed', message: `${req.method} is not allowed; this API is read-only` });
        }
        await route(req, url, res);
      } catch (e) {
        const err = toMeshcaError(e);
        if (err.code === 'internal') d.log?.error({ err, path: url.pathname }, 'http request failed');
        send(res, httpStatusOf(err), { error: err.reason, message: err.message });
      }
    })();
  });
}
