import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { MeshcaError } from '../../pki/errors.js';
import { PRIVATE_MODE } from '../../util/fs.js';
import { DEFAULT_AUDIT_FLUSH_MS, type AuditEntry, type AuditQuery, type AuditRecord, type AuditStats, type AuditStatsQuery, type Store, type TokenKeyRecord } from '../index.js';
import { AUDIT_STATS_SQL, mergeClusterCounts } from '../stats-sql.js';
import { MIGRATIONS } from './migrations.js';
import { pendingMigrations } from '../migrations.js';
import { auditRecordOf, type AuditRow } from '../audit-row.js';

export const DB_FILE_NAME = 'meshca.db';

export interface SqliteStoreOptions {
  /** Queued audit rows are written at most this many milliseconds after the first one (0: next tick). */
  flushMs?: number;
  /** A flush starts early once this many rows are queued. */
  batchSize?: number;
  /** Told about a failed background flush; the rows stay queued for the next attempt. */
  onError?: (e: unknown) => void;
  /** Audit rows written since the last fold that start one at once (default 10,000). */
  foldRows?: number;
  /** Fewer unfolded rows are folded this long after they were written (default 5 s). */
  foldAfterMs?: number;
}


/** Most rows kept in memory while the disk refuses writes; beyond it the oldest are dropped and reported. */
const MAX_QUEUED = 100_000;

/** Most audit ids one fold covers (migration 5, fold below): about 80 ms of SQLite work here. */
export const FOLD_MAX_IDS = 20_000;
/**
 * The WAL's turn, shared with the checkpoint thread (checkpointInBackground): FREE, or WRITING while
 * this connection writes audit rows or folds, or CHECKPOINTING while the thread copies the WAL
 * back. A checkpoint that no commit overlaps backfills the whole WAL, and the next commit then
 * starts the WAL over from its first frame; with commits landing during every checkpoint, it
 * never did, and the WAL grew as long as the load lasted (about 13 MB a second at 15,000
 * certificates a second, into blocks the file system had to allocate and zero).
 */
const WAL_FREE = 0;
const WAL_WRITING = 1;
const WAL_CHECKPOINTING = 2;
/** How soon a background write put off by a running checkpoint is tried again. */
const WAL_RETRY_MS = 2;
/** How long flush() waits for a running checkpoint before it writes beside it. */
const WAL_WAIT_MS = 200;
/** How long a checkpoint waits for a write in progress before it runs beside it. */
const CHECKPOINT_WAITS_MS = 50;

/** Audit rows per INSERT statement: one statement for 32 rows binds the same values with a 32nd of the per-statement overhead. */
const INSERT_ROWS = 32;

export function openSqliteStore(dir: string, o: SqliteStoreOptions = {}): SqliteStore {
  return new SqliteStore(join(dir, DB_FILE_NAME), o);
}

export class SqliteStore implements Store {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly flushMs: number;
  private readonly batchSize: number;
  private readonly onError: (e: unknown) => void;
  private queue: AuditEntry[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private checkpointer: Worker | undefined;
  private background: { intervalMs: number; startAtWalBytes: number; idleStopMs: number } | undefined;
  private readonly writeBatch: (rows: AuditEntry[]) => void;
  private readonly foldRows: number;
  private readonly foldAfterMs: number;
  /** Rows this process wrote since its last fold (another writer's rows are folded too, uncounted). */
  private unfolded = 0;
  private foldTimer: NodeJS.Timeout | undefined;
  /** Folds the next step; true when more unfolded rows remain. */
  private readonly foldNow: () => boolean;
  /** The fold's watermark: audit ids up to it have their pairs in audit_by_identity. */
  private readonly readMark: Database.Statement;
  /** Whose turn the WAL is (WAL_FREE etc.), in memory shared with the checkpoint thread. */
  private readonly walTurn = new Int32Array(new SharedArrayBuffer(4));
  /** A background flush waits for the checkpoint thread (its timer is this.timer). */
  private retrying = false;

  constructor(path: string, o: SqliteStoreOptions = {}) {
    this.path = path;
    this.flushMs = o.flushMs ?? DEFAULT_AUDIT_FLUSH_MS;
    this.batchSize = o.batchSize ?? 500;
    this.foldRows = o.foldRows ?? 10_000;
    this.foldAfterMs = o.foldAfterMs ?? 5000;
    this.onError = o.onError ?? (() => {});
    mkdirSync(dirname(path), { recursive: true });
    // Create the file 0600 before SQLite does: it holds token-issuer keys.
    if (!existsSync(path)) closeSync(openSync(path, 'a', PRIVATE_MODE));
    let db: Database.Database | undefined;
    try {
      this.db = db = new Database(path, { timeout: 5000 });
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.migrate();
    } catch (e) {
      // A database refused here (unreadable, or migrated by a newer meshca) is not left open.
      db?.close();
      if (e instanceof MeshcaError) throw e;
      throw new MeshcaError('failed_precondition', 'corrupt_state', `the state database ${path} is unreadable: ${(e as Error).message}`, { cause: e });
    }
    for (const side of ['-wal', '-shm']) {
      if (existsSync(path + side)) chmodSync(path + side, PRIVATE_MODE);
    }
    const insertRows = (n: number) =>
      this.db.prepare(
        `INSERT INTO audit (time, outcome, reason, identity, caller, method, cluster, client_cluster, serial, not_before, not_after, message)
         VALUES ${Array.from({ length: n }, () => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      );
    const insertOne = insertRows(1);
    const insertMany = insertRows(INSERT_ROWS);
    this.writeBatch = this.db.transaction((rows: AuditEntry[]) => {
      let i = 0;
      const values: unknown[] = [];
      const bind = (r: AuditEntry) =>
        values.push(r.time.getTime(), r.outcome, r.reason, r.identity, r.caller, r.method, r.cluster, r.clientCluster ?? null, r.serial ?? null, r.notBefore?.getTime() ?? null, r.notAfter?.getTime() ?? null, r.message ?? null);
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
    // The identity index, folded in bulk (migration 5 says why): the pairs of every row past the
    // watermark go in sorted, so each identity's index page is written once per fold rather than
    // once per commit. IMMEDIATE: two processes folding at once cannot both read the same mark.
    const readMark = (this.readMark = this.db.prepare('SELECT folded_to FROM audit_fold').pluck());
    const maxId = this.db.prepare('SELECT COALESCE(MAX(id), 0) FROM audit').pluck();
    const insertPairs = this.db.prepare('INSERT OR IGNORE INTO audit_by_identity (identity, id) SELECT identity, id FROM audit WHERE id > ? AND id <= ? ORDER BY identity, id');
    const setMark = this.db.prepare('UPDATE audit_fold SET folded_to = ?');
    // At most FOLD_MAX_IDS ids a transaction, so a backlog (after folds failed for a while) is
    // worked off in steps of ~100 ms instead of one stall of the event loop.
    const fold = this.db.transaction((): boolean => {
      const from = readMark.get() as number;
      const last = maxId.get() as number;
      const to = Math.min(last, from + FOLD_MAX_IDS);
      if (to <= from) return false;
      insertPairs.run(from, to);
      setMark.run(to);
      return to < last;
    });
    this.foldNow = () => fold.immediate();
    // Rows another process left unfolded (a backlog, or a CLI's rows) are folded from here on.
    this.unfolded = Math.max(0, (maxId.get() as number) - (readMark.get() as number));
    this.scheduleFold();
  }

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
    const applied = new Set((this.db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version));
    for (const m of pendingMigrations(MIGRATIONS, applied, `the state database ${this.path}`)) {
      this.db.transaction(() => {
        this.db.exec(m.sql);
        this.db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      })();
    }
  }

  schemaVersion(): number {
    return (this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number }).v;
  }

  async getMeta(key: string): Promise<string | undefined> {
    return (this.db.prepare('SELECT value FROM ca_meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
  }

  async setMeta(key: string, value: string): Promise<void> {
    this.db
      .prepare('INSERT INTO ca_meta (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at')
      .run(key, value, Date.now());
  }

  appendAudit(entry: AuditEntry): void {
    if (this.closed) throw new MeshcaError('unavailable', 'store_closed', 'the store is closed');
    this.queue.push(entry);
    if (this.queue.length >= this.batchSize) this.flushQuietly();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flushQuietly(), this.flushMs);
      // A pending flush must not keep a finished process alive; close() flushes whatever is left.
      this.timer.unref();
    }
  }

  /**
   * Background flushes report through onError and keep the rows; only flush() and close() throw.
   * While the checkpoint thread has the WAL, a background flush waits for it (the rows stay
   * queued, as they would for flushMs anyway); flush() waits for it up to WAL_WAIT_MS, and close()
   * writes at once.
   */
  private flushQuietly(): void {
    const wrote = this.withWal(() => {
      try {
        this.flushNow();
      } catch {
        /* reported by flushNow through onError */
      }
    });
    if (!wrote) {
      if (!this.retrying) {
        if (this.timer) clearTimeout(this.timer);
        this.retrying = true;
        this.timer = setTimeout(() => {
          this.retrying = false;
          this.flushQuietly();
        }, WAL_RETRY_MS);
        this.timer.unref();
      }
    }
  }

  /**
   * Runs a write (a flush, a fold) with the WAL's turn, and returns true; returns false, without
   * running it, while the checkpoint thread has the turn. A write inside another (a fold started
   * by a flush) runs under the outer one's turn.
   */
  private withWal(write: () => void): boolean {
    if (Atomics.load(this.walTurn, 0) === WAL_WRITING) {
      write();
      return true;
    }
    if (Atomics.compareExchange(this.walTurn, 0, WAL_FREE, WAL_WRITING) !== WAL_FREE) return false;
    try {
      write();
    } finally {
      Atomics.store(this.walTurn, 0, WAL_FREE);
    }
    return true;
  }

  /** Writes everything queued in one transaction; on failure the rows go back to the front of the queue. */
  private flushNow(): void {
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
      this.onError(e);
      throw e;
    }
    this.unfolded += rows.length;
    this.scheduleFold();
    this.startCheckpointerIfDue();
  }

  private scheduleFold(): void {
    if (this.unfolded >= this.foldRows) this.foldQuietly();
    else if (this.unfolded > 0 && !this.foldTimer && !this.closed) this.foldLater(this.foldAfterMs);
  }

  private foldLater(ms: number): void {
    this.foldTimer = setTimeout(() => this.foldQuietly(), ms);
    this.foldTimer.unref();
  }

  /** Folds the unfolded tail into audit_by_identity; a failure is reported and retried later. */
  private foldQuietly(): void {
    if (this.foldTimer) {
      clearTimeout(this.foldTimer);
      this.foldTimer = undefined;
    }
    const folded = this.withWal(() => {
      try {
        // A backlog: the next step on a later turn of the event loop (close() folds the rest).
        if (this.foldNow()) this.foldLater(1);
        else this.unfolded = 0;
      } catch (e) {
        this.onError(e);
        if (!this.closed) this.foldLater(this.foldAfterMs);
      }
    });
    // A checkpoint has the WAL: the fold waits it out.
    if (!folded) this.foldLater(WAL_RETRY_MS);
  }

  /**
   * Writes what is queued now (durable issuance waits on it). A checkpoint in progress is waited
   * out first, for at most WAL_WAIT_MS; then the rows are written beside it.
   */
  async flush(): Promise<void> {
    const deadline = Date.now() + WAL_WAIT_MS;
    while (!this.withWal(() => this.flushNow())) {
      if (Date.now() >= deadline) return this.flushNow();
      // A timer, not Atomics.waitAsync: a pending waitAsync does not keep the process alive.
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  pendingAudit(): number {
    return this.queue.length;
  }

  async queryAudit(q: AuditQuery): Promise<AuditRecord[]> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.outcome) {
      where.push('outcome = ?');
      args.push(q.outcome);
    }
    if (q.reason) {
      where.push('reason = ?');
      args.push(q.reason);
    }
    const limit = Math.min(Math.max(1, Math.floor(q.limit ?? 100)), 1000);
    const and = where.map((w) => ` AND ${w}`).join('');
    if (!q.identity) {
      const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${limit}`;
      return (this.db.prepare(sql).all(...args) as AuditRow[]).map(auditRecordOf);
    }
    // Newest first: the unfolded tail (a scan of at most a fold's worth of rows), then the folded
    // rows through audit_by_identity; one read transaction, so a fold in between cannot move the mark.
    const identity = q.identity;
    const read = this.db.transaction((): AuditRow[] => {
      const mark = this.readMark.get() as number;
      const tail = this.db.prepare(`SELECT * FROM audit WHERE id > ? AND identity = ?${and} ORDER BY id DESC LIMIT ${limit}`).all(mark, identity, ...args) as AuditRow[];
      if (tail.length >= limit) return tail;
      const folded = this.db
        .prepare(`SELECT audit.* FROM audit_by_identity i JOIN audit ON audit.id = i.id WHERE i.identity = ? AND i.id <= ?${and} ORDER BY i.id DESC LIMIT ${limit - tail.length}`)
        .all(identity, mark, ...args) as AuditRow[];
      return tail.concat(folded);
    });
    return read().map(auditRecordOf);
  }

  /** Dashboard aggregates; the SQL is shared with the PostgreSQL store (src/store/stats-sql.ts). */
  async auditStats(q: AuditStatsQuery): Promise<AuditStats> {
    const bucketMs = q.bucketSeconds * 1000;
    const buckets = this.db.prepare(AUDIT_STATS_SQL.buckets('?')).all(bucketMs, bucketMs, q.since.getTime()) as { start: number; issued: number; refused: number }[];
    const issued = this.db.prepare(AUDIT_STATS_SQL.issuedPerCluster('?')).all(q.since.getTime()) as { cluster: string; issued: number; last: number | null }[];
    const valid = this.db.prepare(AUDIT_STATS_SQL.validPerCluster('?')).all(q.now.getTime()) as { cluster: string; valid: number }[];
    const reasons = this.db.prepare(AUDIT_STATS_SQL.reasons('?')).all(q.since.getTime()) as { reason: string; count: number }[];
    const recent = this.db.prepare(AUDIT_STATS_SQL.recentRefusals('?')).all(Math.max(1, Math.floor(q.refusals))) as AuditRow[];
    return {
      buckets: buckets.map((b) => ({ start: Number(b.start), issued: Number(b.issued), refused: Number(b.refused) })),
      clusters: mergeClusterCounts(issued, valid),
      reasons: reasons.map((r) => ({ reason: r.reason, count: Number(r.count) })),
      recentRefusals: recent.map(auditRecordOf),
    };
  }

  async listTokenKeys(): Promise<TokenKeyRecord[]> {
    const rows = this.db.prepare('SELECT kid, alg, private_key_pem, created_at FROM token_keys ORDER BY created_at DESC, kid').all() as {
      kid: string;
      alg: string;
      private_key_pem: string;
      created_at: number;
    }[];
    return rows.map((r) => ({ kid: r.kid, alg: r.alg, privateKeyPem: r.private_key_pem, createdAt: new Date(r.created_at) }));
  }

  async addTokenKey(k: TokenKeyRecord): Promise<void> {
    this.db.prepare('INSERT INTO token_keys (kid, alg, private_key_pem, created_at) VALUES (?, ?, ?, ?)').run(k.kid, k.alg, k.privateKeyPem, k.createdAt.getTime());
  }

  /**
   * Moves WAL checkpoints off this thread. By default SQLite checkpoints inside the commit that
   * fills the WAL past 1,000 pages, and a checkpoint fsyncs: on a serving process that is a stall
   * of several milliseconds on the event loop every second or so at a few thousand audit rows per
   * second, which shows in the p99 of issuance latency. Here the serving connection never
   * checkpoints; a worker thread with its own connection runs a PASSIVE checkpoint (which never
   * blocks the writer) every intervalMs, and a TRUNCATE one when it stops. The two take turns
   * through walTurn: the checkpoint waits for a commit in progress (up to 50 ms), and background
   * flushes and folds wait for the checkpoint, so that it backfills the whole WAL and the next
   * commit starts the WAL over (without turns, under steady load the WAL grew by 208 MB in 16 s
   * of 15,000 EC certificates a second; with them it stays at about a second's worth of frames).
   *
   * The thread costs about 15 MB (an isolate plus better-sqlite3), so it starts only once the WAL
   * holds startAtWalBytes (4 MB: SQLite's own 1,000-page trigger) and stops after idleStopMs
   * without new WAL frames; a lightly used CA never pays for it. close() checkpoints on this
   * thread when no worker runs.
   */
  checkpointInBackground(intervalMs = 1000, o: { startAtWalBytes?: number; idleStopMs?: number } = {}): void {
    if (this.background || this.closed) return;
    this.db.pragma('wal_autocheckpoint = 0');
    this.background = { intervalMs, startAtWalBytes: o.startAtWalBytes ?? 4 << 20, idleStopMs: o.idleStopMs ?? 60_000 };
    this.startCheckpointerIfDue();
  }

  /** Whether the background checkpoint thread is running (tests use it). */
  checkpointerRunning(): boolean {
    return this.checkpointer !== undefined;
  }

  private startCheckpointerIfDue(): void {
    const bg = this.background;
    if (!bg || this.checkpointer || this.closed) return;
    let wal: number;
    try {
      wal = statSync(`${this.path}-wal`).size;
    } catch {
      return; // no WAL file yet
    }
    if (wal < bg.startAtWalBytes) return;
    const src = `
      const { workerData, parentPort } = require('node:worker_threads');
      const Database = require(workerData.module);
      const db = new Database(workerData.path, { timeout: 5000 });
      const run = (mode) => {
        try {
          return db.pragma('wal_checkpoint(' + mode + ')')[0];
        } catch (e) {
          parentPort.postMessage(String(e && e.message || e));
        }
      };
      // The WAL's turn, shared with the writer.
      const turn = new Int32Array(workerData.turn);
      let lastLog = -1;
      let quietSince = Date.now();
      let t;
      const stop = () => {
        clearTimeout(t);
        run('TRUNCATE');
        db.close();
        parentPort.close();
      };
      const checkpoint = (waited) => {
        // Between the writer's commits, so that the checkpoint backfills the whole WAL and the next
        // commit starts it over. A writer that keeps the WAL for longer than retryForMs (a backlog
        // written in one go) does not hold checkpoints off: then one runs beside it.
        const took = Atomics.compareExchange(turn, 0, ${WAL_FREE}, ${WAL_CHECKPOINTING}) === ${WAL_FREE};
        if (!took && waited < workerData.retryForMs) {
          t = setTimeout(checkpoint, 1, waited + 1);
          return;
        }
        let r;
        try {
          r = run('PASSIVE');
        } finally {
          if (took) Atomics.store(turn, 0, ${WAL_FREE});
        }
        if (r && r.log !== lastLog) {
          lastLog = r.log;
          quietSince = Date.now();
        } else if (Date.now() - quietSince >= workerData.idleStopMs) return stop();
        t = setTimeout(checkpoint, workerData.intervalMs, 0);
      };
      t = setTimeout(checkpoint, workerData.intervalMs, 0);
      parentPort.on('message', (m) => m === 'stop' && stop());`;
    const w = new Worker(src, {
      eval: true,
      workerData: {
        module: createRequire(import.meta.url).resolve('better-sqlite3'),
        path: this.path,
        intervalMs: bg.intervalMs,
        idleStopMs: bg.idleStopMs,
        turn: this.walTurn.buffer,
        retryForMs: CHECKPOINT_WAITS_MS,
      },
    });
    w.on('message', (m: string) => this.onError(new Error(`WAL checkpoint failed: ${m}`)));
    w.on('error', (e) => this.onError(e));
    w.once('exit', () => {
      if (this.checkpointer === w) this.checkpointer = undefined;
    });
    w.unref();
    this.checkpointer = w;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flushNow();
    this.closed = true;
    try {
      while (this.unfolded > 0 && this.foldNow());
    } catch (e) {
      this.onError(e);
    }
    if (this.foldTimer) clearTimeout(this.foldTimer);
    const w = this.checkpointer;
    if (w) {
      let exited = false;
      const exit = new Promise<void>((resolve) => w.once('exit', () => ((exited = true), resolve())));
      // Kept alive while it finishes: an unreferenced worker would let the process exit first.
      w.ref();
      w.postMessage('stop');
      await Promise.race([exit, new Promise<void>((r) => setTimeout(r, 5000).unref())]);
      if (!exited) await w.terminate();
    } else if (this.background) {
      try {
        this.db.pragma('wal_checkpoint(TRUNCATE)');
      } catch (e) {
        this.onError(e);
      }
    }
    this.db.close();
  }
}

