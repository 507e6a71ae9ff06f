import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { MeshcaError } from '../../pki/errors.js';
import {
  DEFAULT_AUDIT_FLUSH_MS,
  type AuditEntry,
  type AuditQuery,
  type AuditRecord,
  type AuditStats,
  type AuditStatsQuery,
  type Store,
  type TokenKeyRecord,
} from '../index.js';
import { AUDIT_STATS_SQL, mergeClusterCounts } from '../stats-sql.js';
import { auditRecordOf, type AuditRow } from '../audit-row.js';
import { AuditWriter } from './audit-writer.js';
import { Checkpointer } from './checkpointer.js';
import { openDatabase } from './database.js';
import { IdentityFold } from './identity-fold.js';
import * as material from './material.js';
import { schemaVersion } from './migrations.js';
import { newWalTurn } from './wal-turn.js';

export { FOLD_MAX_IDS } from './identity-fold.js';

export const DB_FILE_NAME = 'meshca.db';

export interface SqliteStoreOptions {
  /** Queued audit rows are written at most this many milliseconds after the first one (0: next tick). */
  flushMs?: number;
  /** A flush starts early once this many rows are queued. */
  batchSize?: number;
  /** Told about a failed background flush; the rows stay queued for the next attempt. */
  onError?: (e: unknown) => void;
  /** Told about each failed audit batch too (before onError), for the audit-failure metric. */
  onAuditError?: (e: unknown) => void;
  /** Audit rows written since the last fold that start one at once (default 10,000). */
  foldRows?: number;
  /** Fewer unfolded rows are folded this long after they were written (default 5 s). */
  foldAfterMs?: number;
}

export function openSqliteStore(dir: string, o: SqliteStoreOptions = {}): SqliteStore {
  return new SqliteStore(join(dir, DB_FILE_NAME), o);
}

/**
 * The embedded store: one SQLite file in the state directory. It composes the audit writer
 * (audit-writer.ts), the identity fold (identity-fold.ts) and, on a serving process, the WAL
 * checkpoint thread (checkpointer.ts), which take turns on the WAL (wal-turn.ts).
 */
export class SqliteStore implements Store {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly onError: (e: unknown) => void;
  /** Whose turn the WAL is, in memory shared with the checkpoint thread. */
  private readonly walTurn = newWalTurn();
  private readonly audit: AuditWriter;
  private readonly fold: IdentityFold;
  private checkpointer: Checkpointer | undefined;
  private closed = false;

  constructor(path: string, o: SqliteStoreOptions = {}) {
    this.path = path;
    this.onError = o.onError ?? (() => {});
    this.db = openDatabase(path);
    this.audit = new AuditWriter(this.db, this.walTurn, {
      flushMs: o.flushMs ?? DEFAULT_AUDIT_FLUSH_MS,
      batchSize: o.batchSize ?? 500,
      onError: (e) => {
        o.onAuditError?.(e);
        this.onError(e);
      },
      afterWrite: (rows) => {
        this.fold.wrote(rows);
        this.checkpointer?.startIfDue();
      },
    });
    this.fold = new IdentityFold(this.db, this.walTurn, {
      foldRows: o.foldRows ?? 10_000,
      foldAfterMs: o.foldAfterMs ?? 5000,
      onError: this.onError,
    });
  }

  schemaVersion(): number {
    return schemaVersion(this.db);
  }

  async getMeta(key: string): Promise<string | undefined> {
    return material.getMeta(this.db, key);
  }

  async setMeta(key: string, value: string): Promise<void> {
    material.setMeta(this.db, key, value);
  }

  appendAudit(entry: AuditEntry): void {
    if (this.closed) throw new MeshcaError('unavailable', 'store_closed', 'the store is closed');
    this.audit.append(entry);
  }

  /** Writes what is queued now; a running checkpoint is waited out only briefly (AuditWriter.flush). */
  flush(): Promise<void> {
    return this.audit.flush();
  }

  pendingAudit(): number {
    return this.audit.pending();
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
    if (q.identity) {
      const and = where.map((w) => ` AND ${w}`).join('');
      return this.fold.newest(q.identity, { and, args }, limit).map(auditRecordOf);
    }
    const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${limit}`;
    return (this.db.prepare(sql).all(...args) as AuditRow[]).map(auditRecordOf);
  }

  /** Dashboard aggregates; the SQL is shared with the PostgreSQL store (src/store/stats-sql.ts). */
  async auditStats(q: AuditStatsQuery): Promise<AuditStats> {
    const bucketMs = q.bucketSeconds * 1000;
    const buckets = this.db.prepare(AUDIT_STATS_SQL.buckets('?')).all(bucketMs, bucketMs, q.since.getTime()) as {
      start: number;
      issued: number;
      refused: number;
    }[];
    const issued = this.db.prepare(AUDIT_STATS_SQL.issuedPerCluster('?')).all(q.since.getTime()) as {
      cluster: string;
      issued: number;
      last: number | null;
    }[];
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
    return material.listTokenKeys(this.db);
  }

  async addTokenKey(k: TokenKeyRecord): Promise<void> {
    material.addTokenKey(this.db, k);
  }

  /**
   * Moves WAL checkpoints to a worker thread with its own connection (checkpointer.ts says why):
   * a PASSIVE checkpoint every intervalMs while it runs, a TRUNCATE one when it stops. The thread
   * starts once the WAL holds startAtWalBytes (default: SQLite's own 1,000-page trigger) and
   * stops after idleStopMs without new WAL frames. close() checkpoints on this thread when no
   * worker runs.
   */
  checkpointInBackground(intervalMs = 1000, o: { startAtWalBytes?: number; idleStopMs?: number } = {}): void {
    if (this.checkpointer || this.closed) return;
    this.checkpointer = new Checkpointer(
      this.db,
      this.path,
      this.walTurn,
      { intervalMs, startAtWalBytes: o.startAtWalBytes ?? 4 << 20, idleStopMs: o.idleStopMs ?? 60_000 },
      this.onError,
    );
    this.checkpointer.startIfDue();
  }

  /** Whether the background checkpoint thread is running (tests use it). */
  checkpointerRunning(): boolean {
    return this.checkpointer?.running() ?? false;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.audit.flushNow();
    this.closed = true;
    this.fold.close();
    await this.checkpointer?.close();
    this.db.close();
  }
}
