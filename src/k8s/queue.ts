export interface WorkQueueOptions {
  /** Keys handled at the same time (never the same key twice at once). */
  concurrency?: number;
  /** First retry delay after a failure; doubles per failure of that key up to maxRetryMs. */
  retryMs?: number;
  maxRetryMs?: number;
  onError?: (key: string, error: unknown, retryInMs: number) => void;
}

/**
 * A keyed work queue in the manner of client-go's: a key queued many times before it runs is
 * handled once; a key is never handled by two workers at once (one added while it runs is handled
 * again afterwards, with the newest state); a failure is retried later with a per-key backoff.
 */
export class WorkQueue {
  private readonly pending: string[] = [];
  private readonly queued = new Set<string>();
  private readonly running = new Set<string>();
  /** Keys added while they were running: run again when the current run ends. */
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly idleWaiters: (() => void)[] = [];
  private stopped = false;

  constructor(
    private readonly handle: (key: string) => Promise<void>,
    private readonly o: WorkQueueOptions = {},
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.pending.push(key);
    this.pump();
  }

  /** Stops handing out work; running handlers finish on their own. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.pending.length = 0;
    this.queued.clear();
    this.notifyIdle();
  }

  get size(): number {
    return this.pending.length + this.running.size + this.timers.size;
  }

  /** Resolves once nothing is queued, running or waiting for a retry (for tests and shutdown). */
  idle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private pump(): void {
    const max = this.o.concurrency ?? 4;
    while (!this.stopped && this.running.size < max && this.pending.length > 0) {
      const key = this.pending.shift()!;
      this.queued.delete(key);
      this.running.add(key);
      void this.run(key);
    }
  }

  private async run(key: string): Promise<void> {
    try {
      await this.handle(key);
      this.failures.delete(key);
    } catch (e) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const delay = Math.min((this.o.retryMs ?? 200) * 2 ** (n - 1), this.o.maxRetryMs ?? 30_000);
      this.o.onError?.(key, e, delay);
      if (!this.stopped && !this.timers.has(key)) {
        const t = setTimeout(() => {
          this.timers.delete(key);
          this.add(key);
        }, delay);
        this.timers.set(key, t);
      }
    } finally {
      this.running.delete(key);
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
      if (this.size === 0) this.notifyIdle();
    }
  }

  private notifyIdle(): void {
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
