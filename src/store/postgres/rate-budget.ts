import type pg from 'pg';
import { MeshcaError } from '../../pki/errors.js';
import { sleep } from '../../util/sleep.js';

/**
 * A token bucket in one row of rate_budgets, shared by every replica: each take is one UPDATE
 * that refills by the time elapsed on the database's clock (one clock for all replicas) and takes
 * a token only when one is there, so concurrent replicas serialize on the row and the sum of their
 * calls stays within `rate` per second plus `burst`.
 */
export class SharedRateBudget {
  private created = false;
  readonly burst: number;

  constructor(
    private readonly db: pg.Pool,
    readonly name: string,
    readonly rate: number,
    burst?: number,
  ) {
    this.burst = burst ?? Math.max(1, Math.ceil(rate / 5));
  }

  /** True when a token was taken; false when the budget is spent for now. */
  async tryTake(): Promise<boolean> {
    if (this.rate <= 0) return true;
    if (!this.created) {
      await this.db.query(
        'INSERT INTO rate_budgets (name, tokens, updated_at) VALUES ($1, $2, (extract(epoch from clock_timestamp()) * 1000)::bigint) ON CONFLICT (name) DO NOTHING',
        [this.name, this.burst],
      );
      this.created = true;
    }
    const r = await this.db.query(
      `UPDATE rate_budgets SET tokens = LEAST($3::float8, tokens + GREATEST(0, n.ms - updated_at) / 1000.0 * $2::float8) - 1,
         updated_at = GREATEST(updated_at, n.ms)
       FROM (SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS ms) n
       WHERE name = $1 AND LEAST($3::float8, tokens + GREATEST(0, n.ms - updated_at) / 1000.0 * $2::float8) >= 1`,
      [this.name, this.rate, this.burst],
    );
    return r.rowCount === 1;
  }

  /** Waits for a token (up to `maxWaitMs`): for the process's own certificates, which have no caller to retry them. */
  async takeWaiting(what: string, maxWaitMs: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + maxWaitMs;
    while (!(await this.tryTake())) {
      if (Date.now() >= deadline) throw this.refusal(what);
      await sleep(Math.ceil(1000 / this.rate), signal);
    }
  }

  /** Takes a token or refuses with RESOURCE_EXHAUSTED and a retry hint, so callers back off instead of PCA throttling them. */
  async take(what: string): Promise<void> {
    if (!(await this.tryTake())) throw this.refusal(what);
  }

  private refusal(what: string): MeshcaError {
    const retryMs = Math.ceil(1000 / this.rate);
    return new MeshcaError(
      'resource_exhausted',
      'upstream_budget_exhausted',
      `${what}: the shared budget of ${this.rate} calls per second (${this.name}) is spent; retry in ${retryMs} ms`,
      { retryAfterMs: retryMs },
    );
  }
}
