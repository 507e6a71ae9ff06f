import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Authority } from '../../../ca/authority.js';
import { hasAuditStats, type Store } from '../../../store/index.js';
import { dashboardDocument, type DashboardDocument, type DashboardInput, type IntermediateView, type ReplicaView } from './data.js';
import type { DashboardSource } from './source.js';

export type { DashboardSource, RenewalPolicyView, RotationView, UpstreamView } from './source.js';

/**
 * The operator dashboard on the HTTP port: `/` (one HTML page, its CSS and JS, served from files
 * the build puts in dist/ next to this module; nothing from the network) and `GET /v1/dashboard`,
 * the JSON it polls. Read-only like the rest of the HTTP API.
 */
export interface DashboardDeps {
  authority: Authority;
  store: Store;
  trustDomain: string;
  cluster: string;
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
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * The page, its scripts and stylesheet, read from assets/ next to this module in dist/: the scripts
 * are ES modules compiled from assets/*.ts by that folder's tsconfig (DOM types), app.js importing
 * the others; scripts/copy-assets.mjs copies the HTML and CSS. (doc.ts holds only types and is
 * never fetched.)
 */
const SCRIPTS = ['app', 'cards', 'charts', 'dom', 'format'];
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'page.html', type: 'text/html; charset=utf-8' },
  ...Object.fromEntries(SCRIPTS.map((m) => [`/dashboard/${m}.js`, { file: `${m}.js`, type: 'text/javascript; charset=utf-8' }])),
  '/dashboard/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

let assetRoutes: Record<string, Handler> | undefined;

/**
 * Read once per process, when the first server starts: a missing file stops startup with its
 * path instead of leaving the page to answer 404.
 */
function assetRoutesOnce(): Record<string, Handler> {
  if (assetRoutes) return assetRoutes;
  const out: Record<string, Handler> = {};
  for (const [route, { file, type }] of Object.entries(ASSETS)) {
    const path = fileURLToPath(new URL(`./assets/${file}`, import.meta.url));
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new Error(`dashboard asset ${path} cannot be read (${why}); \`npm run build\` puts it there`, { cause: err });
    }
    out[route] = asset(type, bytes);
  }
  return (assetRoutes = out);
}

function asset(type: string, bytes: Buffer): Handler {
  return (_q, _u, res) => {
    res.writeHead(200, {
      'content-type': type,
      'content-length': bytes.length,
      'cache-control': 'no-cache',
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
    });
    res.end(bytes);
  };
}

type Gathered = Pick<DashboardInput, 'stats' | 'intermediates' | 'rotation' | 'upstreams' | 'terms' | 'policies'>;

/** The part that queries the store and the sources. */
async function gather(d: DashboardDeps, now: Date): Promise<Gathered> {
  // Rows are written in batches: flush so that a request just answered shows up.
  await d.store.flush().catch(() => {});
  const since = new Date(Math.floor(now.getTime() / 60_000) * 60_000 - (WINDOW_MINUTES - 1) * 60_000);
  const [stats, intermediates, rotation, upstreams, terms, policies] = await Promise.all([
    hasAuditStats(d.store) ? d.store.auditStats({ since, bucketSeconds: 60, now, refusals: RECENT_REFUSALS }) : undefined,
    d.intermediates(),
    d.source?.rootRotation?.().catch(() => undefined),
    d.source?.upstreams?.().catch(() => []),
    d.leaderTerms?.().catch(() => []),
    d.source?.renewalPolicies?.().catch(() => []),
  ]);
  return { stats, intermediates, rotation, upstreams: upstreams ?? [], terms, policies };
}

/** The document from gathered data and what this process knows now (leadership, roots, serving certificate). */
function document(d: DashboardDeps, g: Gathered, now: Date): DashboardDocument {
  return dashboardDocument({
    ...g,
    now,
    trustDomain: d.trustDomain,
    cluster: d.cluster,
    roots: d.authority.roots,
    serving: d.serving?.(),
    replica: d.replica(),
    windowMinutes: WINDOW_MINUTES,
  });
}

export async function dashboardJson(d: DashboardDeps): Promise<DashboardDocument> {
  const now = d.now();
  return document(d, await gather(d, now), now);
}

/**
 * Several open dashboards share one round of store queries per second instead of each running its
 * own; leadership and the clock are still read fresh on every request.
 */
const MEMO_MS = 1000;

export function dashboardRoutes(d: DashboardDeps): Record<string, Handler> {
  let memo: { at: number; data: Promise<Gathered> } | undefined;
  const gathered = (now: Date): Promise<Gathered> => {
    const t = Date.now();
    if (!memo || t - memo.at > MEMO_MS) {
      const data = gather(d, now);
      memo = { at: t, data };
      // A failure is not remembered: the next request tries again.
      data.catch(() => (memo = undefined));
    }
    return memo.data;
  };
  const json: Handler = async (_q, _u, res) => {
    const now = d.now();
    const text = `${JSON.stringify(document(d, await gathered(now), now), null, 2)}\n`;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  return { ...assetRoutesOnce(), '/v1/dashboard': json };
}
