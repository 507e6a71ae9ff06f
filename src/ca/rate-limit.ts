import { MeshcaError } from '../pki/errors.js';

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * A token bucket per caller: `rate` requests per second on average, `burst` at once. Synchronous
 * and in memory (per process); idle buckets are dropped once the map grows large.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  readonly burst: number;

  constructor(
    readonly rate: number,
    burst?: number,
    private readonly maxCallers = 100_000,
  ) {
    this.burst = burst ?? Math.max(1, Math.ceil(rate * 2));
  }

  /** Takes one request's token for `caller` or refuses with RESOURCE_EXHAUSTED. A rate of 0 disables the limit. */
  take(caller: string, nowMs: number): void {
    if (this.rate <= 0) return;
    let b = this.buckets.get(caller);
    if (!b) {
      if (this.buckets.size >= this.maxCallers) this.sweep(nowMs);
      b = { tokens: this.burst, at: nowMs };
      this.buckets.set(caller, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((nowMs - b.at) / 1000) * this.rate);
      b.at = nowMs;
    }
    if (b.tokens < 1) {
      const waitMs = Math.ceil(((1 - b.tokens) / this.rate) * 1000);
      throw new MeshcaError(
        'resource_exhausted',
        'rate_limited',
        `caller ${caller} is over its limit of ${this.rate} certificate requests per second (burst ${this.burst}); retry in ${waitMs} ms`,
      );
    }
    b.tokens -= 1;
  }

  /** Drops buckets that have refilled completely: forgetting them changes nothing. */
  private sweep(nowMs: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((nowMs - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(k);
    }
  }
}
