import type { CaState } from '../ca/state.js';
import type { CertificateRequest } from '../resources/certmanager.js';
import { CERTIFICATE_REQUEST } from '../resources/kinds.js';
import type { ResourceStore } from '../resources/store.js';
import type { SecretSink } from '../resources/secrets.js';
import type { Progress } from '../util/progress.js';
import { reconcileRequest, requestLabel } from './certificaterequests.js';
import { ANNOTATIONS } from './certificates/policy.js';
import { reconcileCertificates } from './certificates/index.js';
import { guarded, type ControllerContext, type ReconcileEvent } from './context.js';
import { reconcileClusterDeliveries } from './delivery.js';
import { reconcileIssuers } from './issuer-status.js';
import type { UpstreamFactory } from './issuers/types.js';
import { reconcileRootRotations } from './rootrotation.js';
import { reconcileRootTrustPolicies } from './roottrustpolicy.js';

export interface Controllers {
  store: ResourceStore;
  secrets: SecretSink;
  state: CaState;
  upstreams: UpstreamFactory;
  backoffMs?: (attempts: number) => number;
  /** Hears of steps that take seconds (RSA-4096 keys), for a command to say what it waits for. */
  progress?: Progress;
  /** Serialises reconcilers sharing the state (embedded: a lock file). */
  lock?: () => Promise<() => void>;
}

export interface ReconcileReport {
  events: ReconcileEvent[];
  /** Earliest renewal or retry due after `now`: when the next pass should run. */
  nextWakeup?: Date;
  passes: number;
}

/** Requests applied directly (not made by a Certificate) are approved and signed on their own. */
async function reconcileStandaloneRequests(ctx: ControllerContext): Promise<void> {
  for (const cr of await ctx.store.list<CertificateRequest>(CERTIFICATE_REQUEST)) {
    if (cr.metadata.annotations?.[ANNOTATIONS.certificateName]) continue;
    await guarded(ctx, requestLabel(cr), async () => {
      await reconcileRequest(ctx, cr);
    });
  }
}

/**
 * One reconciliation at time `now`, every controller in dependency order: issuers (readiness),
 * certificates (and their requests), standalone requests, root rotations, root trust policies,
 * then delivery of each cluster's bundle to its API server.
 * A pass that changed something is followed by another (up to `maxPasses`), so that chains of
 * dependencies settle in one call: a selfSigned root Certificate, then the `ca` Issuer made from
 * its secret, then the leaf Certificates of that issuer.
 */
export async function reconcileAll(c: Controllers, o: { now: Date; dryRun?: boolean; maxPasses?: number }): Promise<ReconcileReport> {
  const release = !o.dryRun && c.lock ? await c.lock() : () => {};
  const events: ReconcileEvent[] = [];
  const seen = new Set<string>();
  let nextWakeup: Date | undefined;
  let passes = 0;
  try {
    const max = o.dryRun ? 1 : (o.maxPasses ?? 8);
    for (; passes < max;) {
      passes++;
      const ctx: ControllerContext = {
        store: c.store,
        secrets: c.secrets,
        state: c.state,
        upstreams: c.upstreams,
        backoffMs: c.backoffMs,
        progress: c.progress,
        now: o.now,
        dryRun: !!o.dryRun,
        events: [],
        changed: false,
      };
      await reconcileIssuers(ctx);
      await reconcileCertificates(ctx);
      await reconcileStandaloneRequests(ctx);
      await reconcileRootRotations(ctx);
      await reconcileRootTrustPolicies(ctx);
      await reconcileClusterDeliveries(ctx);
      for (const e of ctx.events) {
        const key = `${e.object}\0${e.action}\0${e.message}`;
        if (!seen.has(key)) {
          seen.add(key);
          events.push(e);
        }
      }
      nextWakeup = ctx.nextWakeup;
      if (!ctx.changed) break;
    }
  } finally {
    release();
  }
  return { events, nextWakeup, passes };
}
