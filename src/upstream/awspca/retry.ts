import type { RetryPolicy } from './config.js';
import { sleep } from '../../util/sleep.js';

export interface RetryHooks {
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** In [0, 1); injectable so tests get exact delays. */
  random?: () => number;
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/** Like util/sleep, but an abort rejects with the signal's reason so a retry loop stops. */
export async function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  await sleep(ms, signal);
  signal?.throwIfAborted();
}

/** Exponential backoff capped at maxDelayMs, with "equal jitter" so that many callers spread out but never retry at once. */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt - 1, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/**
 * Runs `op` until it succeeds, fails with a non-retryable error, or the attempts run out. `op` must be
 * idempotent across attempts: for IssueCertificate that means the same IdempotencyToken every time.
 */
export async function retrying<T>(
  op: (attempt: number) => Promise<T>,
  retryable: (e: unknown) => boolean,
  policy: RetryPolicy,
  hooks: RetryHooks = {},
  signal?: AbortSignal,
): Promise<T> {
  const sleep = hooks.sleep ?? abortableSleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await op(attempt);
    } catch (e) {
      if (attempt >= policy.maxAttempts || !retryable(e) || signal?.aborted) throw e;
      const delay = backoffDelay(attempt, policy, hooks.random);
      hooks.onRetry?.(e, attempt, delay);
      await sleep(delay, signal);
    }
  }
}
