import type { CaState } from '../ca/state.js';
import type { ResourceStore } from '../resources/store.js';
import type { SecretSink } from '../resources/secrets.js';
import type { Progress } from '../util/progress.js';
import type { IssuerDeps, UpstreamFactory } from './issuers/types.js';

/** What happened (or, in a dry run, would happen) to one object during a pass. */
export interface ReconcileEvent {
  /** "Certificate istio-system/istio-ca" */
  object: string;
  /** Short verb: issued, renewed, ready, failed, waiting, would-issue, ... */
  action: string;
  message: string;
  warning?: boolean;
}

/** Everything a controller may touch. One pass runs at one instant, `now`. */
export interface ControllerContext {
  store: ResourceStore;
  secrets: SecretSink;
  /** meshca's own hierarchy (root/ and clusters/), for the meshca issuer and generated roots. */
  state: CaState;
  now: Date;
  /** Decide and report, but write nothing and call no issuer. */
  dryRun: boolean;
  upstreams: UpstreamFactory;
  /** Milliseconds to wait before retry number `attempts` (1-based); default is cert-manager's. */
  backoffMs?: (attempts: number) => number;
  /** Told of steps that take seconds; the command prints or logs them (see src/cli/progress.ts). */
  progress?: Progress;
  events: ReconcileEvent[];
  /** Set by controllers when they wrote something, so reconcileAll knows to run another pass. */
  changed: boolean;
  /** Earliest time something is due (renewal, retry): the server sleeps until then. */
  nextWakeup?: Date;
}

export function record(ctx: ControllerContext, e: ReconcileEvent): void {
  ctx.events.push(e);
}

/**
 * Runs one object's reconcile so that its failure is reported and the pass goes on with the
 * other objects (one bad Certificate must not stop every renewal).
 */
export async function guarded(ctx: ControllerContext, object: string, f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch (e) {
    record(ctx, { object, action: 'error', message: e instanceof Error ? e.message : String(e), warning: true });
  }
}

export function wakeAt(ctx: ControllerContext, at: Date | undefined): void {
  if (!at || at.getTime() <= ctx.now.getTime()) return;
  if (!ctx.nextWakeup || at.getTime() < ctx.nextWakeup.getTime()) ctx.nextWakeup = at;
}

export function issuerDeps(ctx: ControllerContext): IssuerDeps {
  return { secrets: ctx.secrets, state: ctx.state, upstreams: ctx.upstreams, now: ctx.now };
}

const HOUR = 3_600_000;

/** cert-manager's issuance backoff: 1h after the first failure, doubling, at most 32h. */
export function certManagerBackoff(attempts: number): number {
  if (attempts <= 1) return HOUR;
  return Math.min(HOUR * 2 ** (attempts - 1), 32 * HOUR);
}
