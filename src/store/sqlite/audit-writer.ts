import type Database from 'better-sqlite3';
import type { AuditEntry } from '../index.js';
import { WAL_RETRY_MS, writeInTurn } from './wal-turn.js';

export interface AuditWriterOptions {
  /** Queued rows are written at most this many milliseconds after the first one (0: next tick). */
  flushMs: number;
  /** A flush starts early once this many rows are queued. */
  batchSize: number;
  /** Told about a failed background flush; the rows stay queued for the next attempt. */
  onError: (e: unknown) => void;
  /** Called after each committed batch with its row count. */
  afterWrite: (rows: number) => void;
}

/** Most rows kept in memory while the disk refuses writes; beyond it the oldest are dropped and reported. */
const MAX_QUEUED = 100_000;

/** How long flush() waits for a running checkpoint before it writes beside it. */
const WAL_WAIT_MS = 200;

/** Audit rows per INSERT statement: one statement for 32 rows binds the same values with a 32nd of the per-statement overhead. */
const INSERT_ROWS = 32;

/**
 * Audit rows queued in memory and written in batches, one transaction each, synchronously on this
 * thread (better-sqlite3). A background flush that finds the checkpoint thread holding the WAL
 * waits for it; flush() waits for it only so long.
 */
export class AuditWriter {
  private queue: AuditEntry[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** A background flush waits for the checkpoint thread (its timer is this.timer). */
  private retrying = false;
  private readonly writeBatch: (rows: AuditEntry[]) => void;

  constructor(
    db: Database.Database,
    private readonly turn: Int32Array,
    private readonly o: AuditWriterOptions,
  ) {
    const insertRows = (n: number) =>
      db.prepare(
        `INSERT INTO audit (time, outcome, reason, identity, caller, method, cluster, client_cluster, serial, not_before, not_after, message)
         VALUES ${Array.from({ length: n }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      );
    const insertOne = insertRows(1);
    const insertMany = insertRows(INSERT_ROWS);
    this.writeBatch = db.transaction((rows: AuditEntry[]) => {
      let i = 0;
      const values: unknown[] = [];
      const bind = (r: AuditEntry) =>
        values.push(
          r.time.getTime(),
          r.outcome,
          r.reason,
          r.identity,
          r.caller,
          r.method,
          r.cluster,
          r.clientCluster ?? null,
          r.serial ?? null,
          r.notBefore?.getTime() ?? null,
          r.notAfter?.getTime() ?? null,
          r.message ?? null,
        );
      for (; i + INSERT_ROWS <= rows.length; i += INSERT_ROWS) {
        values.length = 0;
        for (let k = i; k < i + INSERT_ROWS; k++) bind(rows[k]);
        insertMany.run(values);
      }
      for (; i < rows.length; i++) {
        values.length = 0;
        bind(rows[i]);
        insertOne.run(values);
      }
    });
  }

  append(entry: AuditEntry): void {
    this.queue.push(entry);
    if (this.queue.length >= this.o.batchSize) this.flushQuietly();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flushQuietly(), this.o.flushMs);
      // A pending flush must not keep a finished process alive; close() flushes whatever is left.
      this.timer.unref();
    }
  }

  pending(): number {
    return this.queue.length;
  }

  /**
   * Writes what is queued now (durable issuance waits on it). A checkpoint in progress is waited
   * out first, for at most WAL_WAIT_MS; then the rows are written beside it.
   */
  async flush(): Promise<void> {
    const deadline = Date.now() + WAL_WAIT_MS;
    while (!writeInTurn(this.turn, () => this.flushNow())) {
      if (Date.now() >= deadline) return this.flushNow();
      // A timer, not Atomics.waitAsync: a pending waitAsync does not keep the process alive.
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /**
   * Background flushes report through onError and keep the rows; only flush() and flushNow()
   * throw. While the checkpoint thread has the WAL, a background flush waits for it (the rows stay
   * queued, as they would for flushMs anyway).
   */
  private flushQuietly(): void {
    const wrote = writeInTurn(this.turn, () => {
      try {
        this.flushNow();
      } catch {
        /* reported by flushNow through onError */
      }
    });
    if (!wrote && !this.retrying) {
      if (this.timer) clearTimeout(this.timer);
      this.retrying = true;
      this.timer = setTimeout(() => {
        this.retrying = false;
        this.flushQuietly();
      }, WAL_RETRY_MS);
      this.timer.unref();
    }
  }

  /**
   * Writes everything queued in one transaction, whoever has the WAL (close() uses it directly);
   * on failure the rows go back to the front of the queue, and the error is reported and thrown.
   */
  flushNow(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.retrying = false;
    }
    if (this.queue.length === 0) return;
    const rows = this.queue;
    this.queue = [];
    try {
      this.writeBatch(rows);
    } catch (e) {
      this.queue = rows.concat(this.queue).slice(-MAX_QUEUED);
      this.o.onError(e);
      throw e;
    }
    this.o.afterWrite(rows.length);
  }
}
