import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Authority } from '../../../ca/authority.js';
import type { CaState } from '../../../ca/state.js';
import type { ServeConfig } from '../../../config/index.js';
import { auditDurableOf, storeKindOf } from '../../../config/store.js';
import { parseCertificate, parseCertificates } from '../../../pki/certificate.js';
import type { Store } from '../../../store/index.js';
import type { PgStore } from '../../../store/postgres/index.js';
import { isReplicated } from '../../../ca/material/replicated.js';
import type { SigningView } from '../../../ca/material/source.js';
import type { Leadership } from '../../../leader/index.js';
import type { DashboardDeps } from './index.js';
import type { IntermediateView } from './data.js';
import {
  combineSources,
  renewalPoliciesFromResources,
  rotationFromResources,
  upstreamHealth,
  type DashboardSource,
  type UpstreamView,
} from './source.js';

/** The slice of startServer's state the dashboard reads; everything is read on each request. */
export interface DashboardWiring {
  config: ServeConfig;
  authority: Authority;
  store: Store;
  state: CaState;
  role: string;
  /** Undefined until startServer has set up leadership (the HTTP server starts first). */
  leader: () => Leadership | undefined;
  now: () => Date;
  serving: () => { notBefore?: Date; notAfter: Date; sans: string[] } | undefined;
  /** Where the signing intermediate comes from (the material source). */
  signing: () => SigningView;
  /** An upstream source's /readyz detail (PCA, files), when in use. */
  upstreamDetail?: () => Record<string, unknown>;
  /** More sources (the controllers' resource store, Kubernetes); consulted before the defaults. */
  source?: DashboardSource;
}

/** Intermediates of the other clusters, from the database (replicas) or the state directory. */
async function otherIntermediates(w: DashboardWiring): Promise<IntermediateView[]> {
  if (isReplicated(w.store)) {
    const rows = (await w.store.currentMaterial()).filter((r) => r.kind === 'intermediate' && r.cluster !== w.config.cluster);
    return rows.map((r) => ({
      cluster: r.cluster,
      cert: parseCertificate(r.certPem),
      chain: parseCertificates(r.chainPem).slice(1),
      signing: false,
      source: 'database',
      generation: r.generation,
    }));
  }
  const out: IntermediateView[] = [];
  for (const cluster of w.state.listClusters()) {
    if (cluster === w.config.cluster) continue;
    const dir = w.state.clusterDir(cluster);
    try {
      const cert = parseCertificate(readFileSync(join(dir, 'ca-cert.pem'), 'utf8'));
      const chainFile = join(dir, 'cert-chain.pem');
      const chain = existsSync(chainFile) ? parseCertificates(readFileSync(chainFile, 'utf8')).filter((c) => !c.der.equals(cert.der)) : [];
      out.push({ cluster, cert, chain, signing: false, source: 'state-dir' });
    } catch {
      // A bundle being rewritten or broken is left out of this refresh rather than failing the page.
    }
  }
  return out;
}

/** Kubernetes health from what requests saw: recent TokenReview outages in the audit. */
async function kubernetesHealth(w: DashboardWiring): Promise<UpstreamView> {
  const c = w.config as ServeConfig & { leaderElection?: boolean; stateBackend?: string };
  const uses = [
    c.kubeconfig ? 'TokenReview' : '',
    c.leaderElection ? 'Lease leader election' : '',
    c.stateBackend === 'secret' ? 'CA state Secret' : '',
  ].filter(Boolean);
  if (uses.length === 0)
    return {
      name: 'Kubernetes API',
      kind: 'kubernetes',
      status: 'not_configured',
      detail: 'no kubeconfig, TokenReview or leader election configured',
    };
  const [last] = await w.store.queryAudit({ reason: 'token_review_unavailable', limit: 1 });
  const recent = last && w.now().getTime() - last.time.getTime() < 5 * 60_000;
  return {
    name: 'Kubernetes API',
    kind: 'kubernetes',
    status: recent ? 'degraded' : 'ok',
    detail: `${uses.join(', ')}${recent ? `; TokenReview failed at ${last.time.toISOString()}: ${last.message ?? ''}` : '; no TokenReview failures in the last 5 minutes'}`,
  };
}

async function databaseHealth(w: DashboardWiring): Promise<UpstreamView | undefined> {
  if (!isReplicated(w.store)) return undefined;
  try {
    // Timed on a connection already open, so that the figure is the round trip, not a connect.
    const c = await w.store.pool.connect();
    const t0 = performance.now();
    let ms: number;
    try {
      await c.query('SELECT 1');
      ms = performance.now() - t0;
    } finally {
      c.release();
    }
    const [term] = await w.store.leaderTerms(1);
    const leader = term ? `leader ${term.holder} (term ${term.term}, since ${term.acquiredAt.toISOString()})` : 'no leader yet';
    return {
      name: 'PostgreSQL',
      kind: 'database',
      status: ms > 500 ? 'degraded' : 'ok',
      detail: `${ms.toFixed(1)} ms round trip; ${leader}`,
    };
  } catch (e) {
    return { name: 'PostgreSQL', kind: 'database', status: 'down', detail: (e as Error).message };
  }
}

function defaultSource(w: DashboardWiring): DashboardSource {
  return {
    rootRotation: () => rotationFromResources(w.config.dir),
    renewalPolicies: () => renewalPoliciesFromResources(w.config.dir),
    async upstreams() {
      const pca: UpstreamView =
        w.config.upstream === 'local'
          ? { name: 'AWS Private CA', kind: 'pca', status: 'not_configured', detail: 'intermediates are signed by the local root' }
          : upstreamHealth(w.upstreamDetail?.(), w.config.upstream);
      const db = await databaseHealth(w);
      return [pca, await kubernetesHealth(w), ...(db ? [db] : [])];
    },
  };
}

export function dashboardFor(w: DashboardWiring): DashboardDeps {
  return {
    authority: w.authority,
    store: w.store,
    trustDomain: w.config.trustDomain,
    cluster: w.config.cluster,
    now: w.now,
    serving: w.serving,
    intermediates: async () => {
      const s = w.authority.signer;
      const v = w.signing();
      const signing: IntermediateView = {
        cluster: w.config.cluster,
        cert: s.cert,
        chain: s.chain,
        signing: true,
        source: v.origin,
        generation: v.generation,
        nextRenewal: v.nextRenewal,
      };
      return [signing, ...(await otherIntermediates(w))];
    },
    replica: () => {
      const l = w.leader();
      return {
        id: l?.identity ?? `${hostname()}/${process.pid}`,
        role: w.role,
        store: storeKindOf(w.config),
        leader: l?.isLeader() ?? false,
        leaderSince: l?.since(),
        auditDurable: auditDurableOf(w.config),
      };
    },
    leaderTerms: isReplicated(w.store) ? () => (w.store as PgStore).leaderTerms(5) : undefined,
    source: combineSources(w.source, defaultSource(w)),
  };
}
