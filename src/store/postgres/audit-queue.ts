/**
 * Group commit for audit rows: rows queue without blocking the request; one writer drains the
 * queue in batches, one statement (one transaction) per batch, and while a batch is in flight new
 * rows gather for the next. `flush()` resolves once every row queued before the call is committed,
 * so a caller that must not answer before its row is durable (auditDurable) waits for at most one
 * round trip plus the batch ahead of it, and many such callers share one commit.
 */

export interface GroupCommitOptions {
  /** A lone row waits at most this long for company before it is written (0: next tick). */
  flushMs: number;
  /** Rows per statement; a queue this long is written at once. */
  batchSize: number;
  /** Most rows held while the database refuses writes; beyond it append() throws (fail closed: no audit, no certificate). */
  maxQueued?: number;
  onError?: (e: unknown) => void;
}

interface Waiter {
  /** Resolved once rows up to this sequence number are committed. */
  upTo: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class QueueFullError extends Error {
  constructor(readonly queued: number) {
    super(`${queued} audit rows are waiting for the database; refusing more until it accepts writes`);
  }
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5000;

export class GroupCommitQueue<T> {
  private queue: T[] = [];
  /** Sequence number of the last row appended, and of the last row committed (rows commit in order). */
  private appended = 0;
  private committed = 0;
  private waiters: Waiter[] = [];
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private readonly maxQueued: number;

  constructor(
    private readonly write: (rows: T[]) => Promise<void>,
    private readonly o: GroupCommitOptions,
  ) {
    this.maxQueued = o.maxQueued ?? 100_000;
  }

  append(row: T): void {
    if (this.queue.length >= this.maxQueued) throw new QueueFullError(this.queue.length);
    this.queue.push(row);
    this.appended++;
    // The writer loops until the queue is empty; after a failure the retry timer restarts it.
    if (this.running || this.failures > 0) return;
    if (this.queue.length >= this.o.batchSize) this.kick();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.kick(), this.o.flushMs);
      // A pending write must not keep a finished process alive; close() flushes what is left.
      this.timer.unref();
    }
  }

  pending(): number {
    return this.queue.length;
  }

  /** Resolves when every row queued so far is committed; rejects if the batch holding the last of them fails. */
  flush(): Promise<void> {
    if (this.committed >= this.appended) return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ upTo: this.appended, resolve, reject }));
    // A failing database must not turn every flush into a hot retry loop: wait for the backoff.
    if (this.failures === 0) this.kick();
    return p;
  }

  private kick(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.running) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.queue.length > 0 && this.failures === 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const rows = this.queue.slice(0, this.o.batchSize);
      const last = this.committed + rows.length;
      try {
        await this.write(rows);
      } catch (e) {
        this.failures++;
        // The rows stay at the head of the queue, in order, for the retry; whoever waits for
        // them is told now rather than left hanging (a durable caller fails its request).
        this.settle(last, e);
        this.o.onError?.(e);
        const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(this.failures - 1, 10));
        this.timer = setTimeout(() => {
          this.failures = Math.min(this.failures, 10);
          this.timer = undefined;
          this.kickAfterFailure();
        }, delay);
        this.timer.unref();
        return;
      }
      this.queue.splice(0, rows.length);
      this.committed = last;
      this.failures = 0;
      this.settle(this.committed);
    }
  }

  private kickAfterFailure(): void {
    if (this.running) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.queue.length > 0 && this.failures === 0) this.kick();
    });
  }

  private settle(upTo: number, error?: unknown): void {
    const keep: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.upTo > upTo) keep.push(w);
      else if (error === undefined) w.resolve();
      else w.reject(error);
    }
    this.waiters = keep;
  }

  /** Writes everything queued, retrying a failed batch a few times; throws if rows remain unwritten. */
  async close(attempts = 5): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (let i = 0; ; i++) {
      await this.running;
      if (this.queue.length === 0) return;
      this.failures = 0;
      try {
        await this.flush();
        return;
      } catch (e) {
        if (i + 1 >= attempts) throw e;
        await new Promise((r) => setTimeout(r, RETRY_MIN_MS * 2 ** i));
      }
    }
  }
}
