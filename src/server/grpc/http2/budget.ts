/**
 * The process-wide budget of buffered request bytes: header blocks being
 * assembled, decoded headers and bodies of requests held by the HTTP/2 engines. Per-connection
 * limits alone let a few connections hold far more memory than the process has, so every
 * connection of both engines charges this one accountant. Past the budget it sheds the
 * oldest incomplete request of a connection without a verified client certificate first, then
 * the oldest incomplete request of any connection, until the total is back under the budget.
 *
 * It also runs the one periodic sweep that enforces the engines' deadlines (handshake, header
 * block, incomplete request, flow-control stall, idle), so no request carries a timer of its own.
 */

export interface BudgetMember {
  /**
   * Age sequence number of this member's oldest incomplete request (Infinity: none). With
   * `authenticated` false only requests on connections without a verified client certificate count.
   */
  oldest(authenticated: boolean): number;
  /** Sheds the request that oldest(authenticated) named, releasing its bytes. */
  shedOldest(authenticated: boolean): void;
  /** Enforces the member's deadlines; `now` is the budget's coarse clock. */
  sweep(now: number): void;
}

export const DEFAULT_PROCESS_BUDGET_BYTES = 64 * 1024 * 1024;
export const DEFAULT_SWEEP_MS = 1000;

export class RequestBudget {
  /** Bytes charged now. */
  used = 0;
  /** Requests shed since the process started (for tests and metrics). */
  shed = 0;
  /** A clock read by the hot path instead of Date.now(), advanced by each sweep. */
  now = Date.now();
  private seq = 0;
  private readonly members = new Set<BudgetMember>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    public limit = DEFAULT_PROCESS_BUDGET_BYTES,
    private sweepMs = DEFAULT_SWEEP_MS,
  ) {}

  /** A number that orders requests by arrival across the whole process. */
  nextSeq(): number {
    return ++this.seq;
  }

  join(m: BudgetMember): void {
    this.members.add(m);
    if (!this.timer) this.startTimer();
  }

  leave(m: BudgetMember): void {
    this.members.delete(m);
    if (this.members.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  get memberCount(): number {
    return this.members.size;
  }

  /** Sweep period; tests shorten it together with the engines' deadlines. */
  setSweepInterval(ms: number): void {
    this.sweepMs = ms;
    if (this.timer) {
      clearInterval(this.timer);
      this.startTimer();
    }
  }

  /**
   * Charges n bytes. Past the limit, incomplete requests are shed oldest first (unauthenticated
   * ones before any other), possibly the caller's own: callers check their request afterwards.
   */
  charge(n: number): void {
    this.used += n;
    if (this.used > this.limit) this.shedUntilUnder();
  }

  release(n: number): void {
    this.used -= n;
  }

  private shedUntilUnder(): void {
    for (const authenticated of [false, true]) {
      while (this.used > this.limit) {
        let best: BudgetMember | undefined;
        let bestSeq = Infinity;
        for (const m of this.members) {
          const s = m.oldest(authenticated);
          if (s < bestSeq) {
            bestSeq = s;
            best = m;
          }
        }
        if (!best) break;
        const before = this.used;
        best.shedOldest(authenticated);
        this.shed++;
        // A member that could not release anything must not spin this loop forever.
        if (this.used >= before) break;
      }
    }
  }

  sweep(): void {
    this.now = Date.now();
    for (const m of this.members) m.sweep(this.now);
  }

  private startTimer(): void {
    this.now = Date.now();
    this.timer = setInterval(() => this.sweep(), this.sweepMs);
    this.timer.unref();
  }
}

/** The one budget of this process, shared by every connection of the 'frames' and 'node' engines. */
export const requestBudget = new RequestBudget();
