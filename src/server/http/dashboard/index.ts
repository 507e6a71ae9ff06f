import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authority } from '../../../ca/authority.js';
import { hasAuditStats, type Store } from '../../../store/index.js';
import { APP_JS } from './assets/app.js';
import { PAGE_HTML } from './assets/page.js';
import { STYLE_CSS } from './assets/style.js';
import { dashboardDocument, type IntermediateView, type ReplicaView } from './data.js';
import type { DashboardSource } from './source.js';

export type { DashboardSource, RotationView, UpstreamView } from './source.js';

/**
 * The operator dashboard on the HTTP port: `/` (one HTML page, its CSS and JS, all embedded as
 * strings so that they survive `tsc` and need no build step or network) and `GET /v1/dashboard`,
 * the JSON it polls. Read-only like the rest of the HTTP API.
 */
export interface DashboardDeps {
  authority: Authority;
  store: Store;
  trustDomain: string;
  cluster: string;
  /** Largest workload TTL: no certificate issued longer ago can still be valid (bounds the count). */
  maxTtlSeconds: number;
  now: () => Date;
  serving?: () => { notBefore?: Date; notAfter: Date; sans: string[] } | undefined;
  /** Every cluster intermediate known here (state directory or database), the signing one included. */
  intermediates: () => Promise<IntermediateView[]>;
  replica: () => ReplicaView;
  /** Recent leader terms, newest first (PostgreSQL store). */
  leaderTerms?: () => Promise<{ term: number; holder: string; acquiredAt: Date }[]>;
  source?: DashboardSource;
}

type Handler = (req: IncomingMessage, url: URL, res: ServerResponse) => Promise<void> | void;

const WINDOW_MINUTES = 60;
const RECENT_REFUSALS = 25;

// No inline script or style and nothing from elsewhere: the page works offline, and the policy
// keeps it that way.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function asset(type: string, body: string): Handler {
  const bytes = Buffer.from(body, 'utf8');
  return (_q, _u, res) => {
    res.writeHead(200, { 'content-type': type, 'content-length': bytes.length, 'cache-control': 'no-cache', 'content-security-policy': CSP, 'x-content-type-options': 'nosniff' });
    res.end(bytes);
  };
}

export async function dashboardJson(d: DashboardDeps): Promise<ReturnType<typeof dashboardDocument>> {
  const now = d.now();
  // Rows are written in batches: flush so that a request just answered shows up.
  await d.store.flush().catch(() => {});
  const since = new Date(Math.floor(now.getTime() / 60_000) * 60_000 - (WINDOW_MINUTES - 1) * 60_000);
  const [stats, intermediates, rotation, upstreams, terms] = await Promise.all([
    hasAuditStats(d.store) ? d.store.auditStats({ since, bucketSeconds: 60, now, validSince: new Date(now.getTime() - d.maxTtlSeconds * 1000), refusals: RECENT_REFUSALS }) : undefined,
    d.intermediates(),
    d.source?.rootRotation?.().catch(() => undefined),
    d.source?.upstreams?.().catch(() => []),
    d.leaderTerms?.().catch(() => []),
  ]);
  return dashboardDocument({
    now,
    trustDomain: d.trustDomain,
    cluster: d.cluster,
    roots: d.authority.roots,
    intermediates,
    stats,
    serving: d.serving?.(),
    replica: d.replica(),
    rotation,
    upstreams: upstreams ?? [],
    terms,
    windowMinutes: WINDOW_MINUTES,
  });
}

export function dashboardRoutes(d: DashboardDeps): Record<string, Handler> {
  return {
    '/': asset('text/html; charset=utf-8', PAGE_HTML),
    '/dashboard/app.js': asset('text/javascript; charset=utf-8', APP_JS),
    '/dashboard/style.css': asset('text/css; charset=utf-8', STYLE_CSS),
    '/v1/dashboard': async (_q, _u, res) => {
      const text = `${JSON.stringify(await dashboardJson(d), null, 2)}\n`;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    },
  };
}
