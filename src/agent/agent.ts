import { setTimeout as delay } from 'node:timers/promises';
import { toMeshcaError } from '../errors.js';
import type { MeshcaError } from '../pki/errors.js';
import type { CaClient } from './client.js';
import { issueOnce, loadCertDir, type AgentConfig, type HeldCertificate } from './issue.js';
import { backoffDelay, renewalDelay } from './schedule.js';

/** Time as the loop sees it; tests pass a fake one that advances instantly. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => delay(ms, undefined, { signal }).catch(() => undefined),
};

export type AgentEvent =
  | { type: 'issued'; held: HeldCertificate; auth: 'mtls' | 'token'; nextRenewal: Date }
  | { type: 'failed'; error: MeshcaError; failures: number; retryAt: Date; current?: HeldCertificate }
  | { type: 'stopped' };

export interface AgentDeps {
  client: CaClient;
  clock?: Clock;
  random?: () => number;
  readFile?: (path: string) => string;
  onEvent?: (e: AgentEvent) => void;
}

/**
 * The long-running agent: issue now, then renew at the configured fraction of each
 * certificate's life. Failures back off exponentially while the files on disk keep serving the
 * last good certificate until it expires. Returns when `signal` aborts.
 */
export async function runAgent(cfg: AgentConfig, deps: AgentDeps, signal: AbortSignal): Promise<void> {
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? Math.random;
  const emit = deps.onEvent ?? (() => undefined);
  // A bad --cert-dir is a configuration error, reported at once rather than retried forever.
  let current: HeldCertificate | undefined = cfg.certDir ? loadCertDir(cfg.certDir, deps.readFile) : undefined;
  let failures = 0;
  while (!signal.aborted) {
    let wait: number;
    try {
      const { held, auth } = await issueOnce(cfg, { client: deps.client, now: clock.now, readFile: deps.readFile, signal }, current);
      current = held;
      failures = 0;
      wait = renewalDelay(
        { notBefore: held.leaf.notBefore, notAfter: held.leaf.notAfter, receivedAt: held.receivedAt, renewAt: cfg.renewAt, random },
        clock.now(),
      );
      emit({ type: 'issued', held, auth, nextRenewal: new Date(clock.now() + wait) });
    } catch (e) {
      if (signal.aborted) break;
      failures++;
      wait = backoffDelay(failures);
      emit({ type: 'failed', error: toMeshcaError(e), failures, retryAt: new Date(clock.now() + wait), current });
    }
    await clock.sleep(wait, signal);
  }
  emit({ type: 'stopped' });
}
