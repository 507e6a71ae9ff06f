import pg from 'pg';
import { MeshcaError } from '../../pki/errors.js';
import type {
  AdvisoryFence,
  CaMaterialKind,
  CaMaterialRow,
  CaMaterialRows,
  LeaderTerm,
  PendingRenewal,
  UpstreamRenewals,
} from '../ca-material.js';
import type { AuditEntry, AuditQuery, AuditRecord, AuditStats, AuditStatsQuery, StoreWithStats, TokenKeyRecord } from '../index.js';
import { AUDIT_STATS_SQL, mergeClusterCounts } from '../stats-sql.js';
import { GroupCommitQueue, QueueFullError } from './audit-queue.js';
import { LOCKS, LOCK_NAMESPACE, MATERIAL_CHANNEL } from './locks.js';
import * as material from './material.js';
import * as renewals from './renewals.js';
import { SharedRateBudget } from './rate-budget.js';
import { migratePostgres } from './migrate.js';
import { auditRecordOf, type AuditRow } from '../audit-row.js';

export interface PgStoreOptions {
  /** Queued audit rows wait at most this long for a batch (0: next tick). */
  flushMs?: number;
  /** Rows per INSERT; a queue this long is written at once. */
  batchSize?: number;
  /** Told about a failed background write; the rows stay queued for the retry. */
  onError?: (e: unknown) => void;
  /** Told about each failed audit batch too (before onError), for the audit-failure metric. */
  onAuditError?: (e: unknown) => void;
  /** Pool size (default 10). */
  maxConnections?: number;
  /** application_name, visible in pg_stat_activity (default "meshca"). */
  applicationName?: string;
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** Opens the pool, checks the server answers, migrates. */
export async function openPgStore(url: string, o: PgStoreOptions = {}): Promise<PgStore> {
  const s = new PgStore(url, o);
  try {
    const c = await s.pool.connect();
    try {
      await migratePostgres(c, redactUrl(url));
    } finally {
      c.release();
    }
  } catch (e) {
    await s.pool.end().catch(() => {});
    if (e instanceof MeshcaError) throw e;
    throw new MeshcaError(
      'unavailable',
      'store_unavailable',
      `cannot use the PostgreSQL store ${redactUrl(url)}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  return s;
}

/**
 * The PostgreSQL store: the same Store interface as SQLite, for several `meshca serve` replicas
 * sharing one database. Audit rows are group-committed (audit-queue.ts); CA material and leader
 * terms live in tables of their own (material.ts) so that replicas share no state directory.
 */
export class PgStore implements StoreWithStats, CaMaterialRows, UpstreamRenewals {
  /** Several replicas share this store (tells the server to run the HA wiring). */
  readonly replicated = true;
  readonly pool: pg.Pool;
  readonly url: string;
  private readonly audit: GroupCommitQueue<AuditEntry>;
  private closed = false;

  constructor(url: string, o: PgStoreOptions = {}) {
    this.url = url;
    this.pool = new pg.Pool({
      connectionString: url,
      max: o.maxConnections ?? 10,
      application_name: o.applicationName ?? 'meshca',
      keepAlive: true,
      connectionTimeoutMillis: 5000,
    });
    // An idle client whose server went away emits here; without a listener the process would crash.
    this.pool.on('error', (e) => o.onError?.(e));
    this.audit = new GroupCommitQueue((rows) => this.insertAudit(rows), {
      flushMs: o.flushMs ?? 5,
      batchSize: o.batchSize ?? 500,
      onError: (e) => {
        o.onAuditError?.(e);
        o.onError?.(e);
      },
    });
  }

  async getMeta(key: string): Promise<string | undefined> {
    const r = await this.pool.query<{ value: string }>('SELECT value FROM ca_meta WHERE key = $1', [key]);
    return r.rows[0]?.value;
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.pool.query(
      'INSERT INTO ca_meta (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
      [key, value, Date.now()],
    );
  }

  appendAudit(entry: AuditEntry): void {
    if (this.closed) throw new MeshcaError('unavailable', 'store_closed', 'the store is closed');
    try {
      this.audit.append(entry);
    } catch (e) {
      if (e instanceof QueueFullError) throw new MeshcaError('unavailable', 'audit_backlog', e.message);
      throw e;
    }
  }

  /** Resolves once every row queued before the call is committed (see GroupCommitQueue.flush). */
  flush(): Promise<void> {
    return this.audit.flush();
  }

  pendingAudit(): number {
    return this.audit.pending();
  }

  /** One statement per batch: unnest() turns column arrays into rows, so any batch size takes 12 parameters. */
  private async insertAudit(rows: AuditEntry[]): Promise<void> {
    const col = <V>(f: (r: AuditEntry) => V) => rows.map(f);
    await this.pool.query(
      `INSERT INTO audit (time, outcome, reason, identity, caller, method, cluster, client_cluster, serial, not_before, not_after, message)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::bigint[], $12::text[])`,
      [
        col((r) => r.time.getTime()),
        col((r) => r.outcome),
        col((r) => r.reason),
        col((r) => r.identity),
        col((r) => r.caller),
        col((r) => r.method),
        col((r) => r.cluster),
        col((r) => r.clientCluster ?? null),
        col((r) => r.serial ?? null),
        col((r) => r.notBefore?.getTime() ?? null),
        col((r) => r.notAfter?.getTime() ?? null),
        col((r) => r.message ?? null),
      ],
    );
  }

  async queryAudit(q: AuditQuery): Promise<AuditRecord[]> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    const add = (sql: string, v: string) => {
      args.push(v);
      where.push(`${sql} = $${args.length}`);
    };
    if (q.identity) add('identity', q.identity);
    if (q.outcome) add('outcome', q.outcome);
    if (q.reason) add('reason', q.reason);
    const limit = Math.min(Math.max(1, Math.floor(q.limit ?? 100)), 1000);
    const r = await this.pool.query<AuditRow>(
      `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ${limit}`,
      args,
    );
    return r.rows.map(auditRecordOf);
  }

  /** Every issued serial (for the HA test's "no lost row" check and for reconciliation tools). */
  async issuedSerials(): Promise<string[]> {
    const r = await this.pool.query<{ serial: string }>("SELECT serial FROM audit WHERE outcome = 'issued' AND serial IS NOT NULL");
    return r.rows.map((x) => x.serial);
  }

  async auditStats(q: AuditStatsQuery): Promise<AuditStats> {
    const p = (i: number) => `$${i}`;
    const bucketMs = q.bucketSeconds * 1000;
    const [buckets, issued, valid, reasons, recent] = await Promise.all([
      this.pool.query<{ start: string; issued: string; refused: string }>(AUDIT_STATS_SQL.buckets(p), [
        bucketMs,
        bucketMs,
        q.since.getTime(),
      ]),
      this.pool.query<{ cluster: string; issued: string; last: string | null }>(AUDIT_STATS_SQL.issuedPerCluster(p), [q.since.getTime()]),
      this.pool.query<{ cluster: string; valid: string }>(AUDIT_STATS_SQL.validPerCluster(p), [q.now.getTime()]),
      this.pool.query<{ reason: string; count: string }>(AUDIT_STATS_SQL.reasons(p), [q.since.getTime()]),
      this.pool.query<AuditRow>(AUDIT_STATS_SQL.recentRefusals(p), [Math.max(1, Math.floor(q.refusals))]),
    ]);
    return {
      buckets: buckets.rows.map((b) => ({ start: Number(b.start), issued: Number(b.issued), refused: Number(b.refused) })),
      clusters: mergeClusterCounts(issued.rows, valid.rows),
      reasons: reasons.rows.map((r) => ({ reason: r.reason, count: Number(r.count) })),
      recentRefusals: recent.rows.map(auditRecordOf),
    };
  }

  async listTokenKeys(): Promise<TokenKeyRecord[]> {
    const r = await this.pool.query<{ kid: string; alg: string; private_key_pem: string; created_at: string }>(
      'SELECT kid, alg, private_key_pem, created_at FROM token_keys ORDER BY created_at DESC, kid',
    );
    return r.rows.map((x) => ({ kid: x.kid, alg: x.alg, privateKeyPem: x.private_key_pem, createdAt: new Date(Number(x.created_at)) }));
  }

  async addTokenKey(k: TokenKeyRecord): Promise<void> {
    await this.pool.query('INSERT INTO token_keys (kid, alg, private_key_pem, created_at) VALUES ($1, $2, $3, $4)', [
      k.kid,
      k.alg,
      k.privateKeyPem,
      k.createdAt.getTime(),
    ]);
  }

  // --- CA material (src/store/ca-material.ts) ---

  latestMaterial(kind: CaMaterialKind, cluster: string): Promise<CaMaterialRow | undefined> {
    return material.latestMaterial(this.pool, kind, cluster);
  }

  currentMaterial(): Promise<CaMaterialRow[]> {
    return material.currentMaterial(this.pool);
  }

  materialHistory(kind: CaMaterialKind, cluster?: string): Promise<CaMaterialRow[]> {
    return material.materialHistory(this.pool, kind, cluster);
  }

  commitMaterial(row: CaMaterialRow, fence?: AdvisoryFence): Promise<boolean> {
    return material.commitMaterial(this.pool, row, fence);
  }

  pendingRenewal(cluster: string, generation: number): Promise<PendingRenewal | undefined> {
    return renewals.pendingRenewal(this.pool, cluster, generation);
  }

  beginRenewal(p: PendingRenewal, fence?: AdvisoryFence): Promise<PendingRenewal> {
    return renewals.beginRenewal(this.pool, p, fence);
  }

  recordRenewalRef(cluster: string, generation: number, ref: string, fence?: AdvisoryFence): Promise<void> {
    return renewals.recordRenewalRef(this.pool, cluster, generation, ref, fence);
  }

  /** A token bucket shared with every replica on this database. */
  rateBudget(name: string, rate: number, burst?: number): SharedRateBudget {
    return new SharedRateBudget(this.pool, name, rate, burst);
  }

  recordLeaderTerm(holder: string, at: Date): Promise<number> {
    return material.recordLeaderTerm(this.pool, holder, at);
  }

  leaderTerms(limit: number): Promise<LeaderTerm[]> {
    return material.leaderTerms(this.pool, limit);
  }

  /** A session-level lock on one pooled connection; other queries inside fn use the pool as usual. */
  async withBootstrapLock<T>(fn: () => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query('SELECT pg_advisory_lock($1, $2)', [LOCK_NAMESPACE, LOCKS.bootstrap]);
      try {
        return await fn();
      } finally {
        await c.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_NAMESPACE, LOCKS.bootstrap]).catch(() => {});
      }
    } finally {
      c.release();
    }
  }

  /**
   * LISTEN on a connection of its own (a pooled one would be handed to other queries). If the
   * connection drops, notifications stop until it is re-established; callers also poll, so a lost
   * notification delays a follower, it never strands it.
   */
  async watchMaterial(cb: (kind: CaMaterialKind, cluster: string, generation: number) => void): Promise<() => Promise<void>> {
    let stopped = false;
    let client: pg.Client | undefined;
    let retry: NodeJS.Timeout | undefined;
    const connect = async (): Promise<void> => {
      const c = new pg.Client({ connectionString: this.url, application_name: 'meshca-listen', keepAlive: true });
      c.on('error', () => reconnect());
      c.on('end', () => reconnect());
      c.on('notification', (n) => {
        const [kind, cluster, gen] = (n.payload ?? '').split('/');
        if (kind === 'root' || kind === 'intermediate') cb(kind, cluster ?? '', Number(gen));
      });
      await c.connect();
      await c.query(`LISTEN ${MATERIAL_CHANNEL}`);
      client = c;
    };
    const reconnect = (): void => {
      const c = client;
      client = undefined;
      c?.removeAllListeners();
      c?.on('error', () => {});
      void c?.end().catch(() => {});
      if (stopped || retry) return;
      retry = setTimeout(() => {
        retry = undefined;
        if (!stopped) void connect().catch(() => reconnect());
      }, 1000);
      retry.unref();
    };
    await connect();
    return async () => {
      stopped = true;
      clearTimeout(retry);
      const c = client;
      client = undefined;
      c?.removeAllListeners();
      c?.on('error', () => {});
      await c?.end().catch(() => {});
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.audit.close();
    } finally {
      await this.pool.end();
    }
  }
}
