import type Database from 'better-sqlite3';
import type { AuditRow } from '../audit-row.js';
import { WAL_RETRY_MS, writeInTurn } from './wal-turn.js';

/** Most audit ids one fold transaction covers, so that a backlog never stalls the event loop for long. */
export const FOLD_MAX_IDS = 20_000;

export interface IdentityFoldOptions {
  /** Rows written since the last fold that start one at once. */
  foldRows: number;
  /** Fewer unfolded rows are folded this long after they were written. */
  foldAfterMs: number;
  onError: (e: unknown) => void;
}

/** A query's filters beside the identity: SQL to append after AND-joined conditions, and its arguments. */
export interface AuditFilter {
  and: string;
  args: (string | number)[];
}

/**
 * The audit-by-identity index, folded in bulk (migration 5 says why): the (identity, id) pairs of
 * every row past the watermark go into audit_by_identity sorted, so each identity's index page is
 * written once per fold rather than once per commit. Queries read the folded rows through it and
 * scan the short unfolded tail.
 */
export class IdentityFold {
  /** Rows this process wrote since its last fold (another writer's rows are folded too, uncounted). */
  private unfolded = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The watermark: audit ids up to it have their pairs in audit_by_identity. */
  private readonly readMark: Database.Statement;
  /** Folds the next step; true when more unfolded rows remain. */
  private readonly step: () => boolean;

  constructor(
    private readonly db: Database.Database,
    private readonly turn: Int32Array,
    private readonly o: IdentityFoldOptions,
  ) {
    const readMark = (this.readMark = db.prepare('SELECT folded_to FROM audit_fold').pluck());
    const maxId = db.prepare('SELECT COALESCE(MAX(id), 0) FROM audit').pluck();
    const insertPairs = db.prepare(
      'INSERT OR IGNORE INTO audit_by_identity (identity, id) SELECT identity, id FROM audit WHERE id > ? AND id <= ? ORDER BY identity, id',
    );
    const setMark = db.prepare('UPDATE audit_fold SET folded_to = ?');
    // At most FOLD_MAX_IDS ids a transaction: a backlog (after folds failed for a while) is worked
    // off in steps on later turns of the event loop.
    const fold = db.transaction((): boolean => {
      const from = readMark.get() as number;
      const last = maxId.get() as number;
      const to = Math.min(last, from + FOLD_MAX_IDS);
      if (to <= from) return false;
      insertPairs.run(from, to);
      setMark.run(to);
      return to < last;
    });
    // IMMEDIATE: two processes folding at once cannot both read the same mark.
    this.step = () => fold.immediate();
    // Rows another process left unfolded (a backlog, or a CLI's rows) are folded from here on.
    this.unfolded = Math.max(0, (maxId.get() as number) - (readMark.get() as number));
    this.schedule();
  }

  /** Counts rows this process has just written: a fold starts at once past foldRows, else later. */
  wrote(rows: number): void {
    this.unfolded += rows;
    this.schedule();
  }

  private schedule(): void {
    if (this.unfolded >= this.o.foldRows) this.foldQuietly();
    else if (this.unfolded > 0 && !this.timer && !this.closed) this.later(this.o.foldAfterMs);
  }

  private later(ms: number): void {
    this.timer = setTimeout(() => this.foldQuietly(), ms);
    this.timer.unref();
  }

  /** Folds the unfolded tail; a failure is reported and retried later. */
  private foldQuietly(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const folded = writeInTurn(this.turn, () => {
      try {
        // A backlog: the next step on a later turn of the event loop (close() folds the rest).
        if (this.step()) this.later(1);
        else this.unfolded = 0;
      } catch (e) {
        this.o.onError(e);
        if (!this.closed) this.later(this.o.foldAfterMs);
      }
    });
    // A checkpoint has the WAL: the fold waits it out.
    if (!folded) this.later(WAL_RETRY_MS);
  }

  /**
   * An identity's rows, newest first: the unfolded tail (a scan of at most a fold's worth of
   * rows), then the folded rows through audit_by_identity; one read transaction, so that a fold in
   * between cannot move the mark.
   */
  newest(identity: string, filter: AuditFilter, limit: number): AuditRow[] {
    const read = this.db.transaction((): AuditRow[] => {
      const mark = this.readMark.get() as number;
      const tail = this.db
        .prepare(`SELECT * FROM audit WHERE id > ? AND identity = ?${filter.and} ORDER BY id DESC LIMIT ${limit}`)
        .all(mark, identity, ...filter.args) as AuditRow[];
      if (tail.length >= limit) return tail;
      const folded = this.db
        .prepare(
          `SELECT audit.* FROM audit_by_identity i JOIN audit ON audit.id = i.id WHERE i.identity = ? AND i.id <= ?${filter.and} ORDER BY i.id DESC LIMIT ${limit - tail.length}`,
        )
        .all(identity, mark, ...filter.args) as AuditRow[];
      return tail.concat(folded);
    });
    return read();
  }

  /** Folds everything left, beside any checkpoint, and stops folding later. */
  close(): void {
    this.closed = true;
    try {
      while (this.unfolded > 0 && this.step());
    } catch (e) {
      this.o.onError(e);
    }
    if (this.timer) clearTimeout(this.timer);
  }
}
