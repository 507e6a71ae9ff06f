/** Defaults for refusals of unauthenticated callers: audit rows per second, and the burst above it. */
export const DEFAULT_UNAUTHENTICATED_AUDIT_RATE = 50;
export const DEFAULT_UNAUTHENTICATED_AUDIT_BURST = 100;

/** What was left out of the audit since the last summary. */
export interface SuppressedSummary {
  count: number;
  since: Date;
  reasons: Map<string, number>;
}

/**
 * A token bucket for audit rows of refusals whose caller is unknown: anyone who can reach the port
 * can send those, and each would otherwise cost a row. Rows over the bucket are counted by reason
 * instead, and the counts leave as one summary row. The bound is per process: with --workers each
 * worker has its own bucket.
 */
export class RefusalAuditLimiter {
  private tokens: number;
  private last = 0;
  private pending: SuppressedSummary | undefined;

  constructor(
    private readonly rate = DEFAULT_UNAUTHENTICATED_AUDIT_RATE,
    private readonly burst = DEFAULT_UNAUTHENTICATED_AUDIT_BURST,
  ) {
    this.tokens = burst;
  }

  /** Whether one more row may be written now; false means the caller should suppress() it. */
  admit(nowMs: number): boolean {
    if (nowMs > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.last) / 1000) * this.rate);
      this.last = nowMs;
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** Counts a row that was not written; true for the first one since the last summary. */
  suppress(reason: string, now: Date): boolean {
    const p = this.pending;
    if (!p) {
      this.pending = { count: 1, since: now, reasons: new Map([[reason, 1]]) };
      return true;
    }
    p.count++;
    p.reasons.set(reason, (p.reasons.get(reason) ?? 0) + 1);
    return false;
  }

  get hasPending(): boolean {
    return this.pending !== undefined;
  }

  /** The counts since the last summary, once; undefined when nothing was suppressed. */
  takeSummary(): SuppressedSummary | undefined {
    const p = this.pending;
    this.pending = undefined;
    return p;
  }
}

export function summaryMessage(s: SuppressedSummary): string {
  const reasons = [...s.reasons].map(([r, n]) => `${r}=${n}`).join(', ');
  return `${s.count} unauthenticated refusals not audited individually since ${s.since.toISOString()}; reasons: ${reasons}`;
}
