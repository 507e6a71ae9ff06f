import { MeshcaError } from '../pki/errors.js';

/**
 * Numbered schema migrations shared by every store, applied in order, one transaction each, and
 * recorded in schema_migrations. Never edit a released migration: add the next number. Where the
 * SQL is portable (BIGINT/TEXT, integer-millisecond times, ON CONFLICT) one text serves both
 * dialects; where it is not (row ids: SQLite's INTEGER PRIMARY KEY aliases the rowid, PostgreSQL
 * needs an identity column) the migration carries one text per dialect.
 */
export type Dialect = 'sqlite' | 'postgres';

export interface Migration {
  version: number;
  name: string;
  sql: string | Record<Dialect, string>;
}

export function migrationSql(m: Migration, d: Dialect): string {
  return typeof m.sql === 'string' ? m.sql : m.sql[d];
}

const auditTable = (id: string) => `
      CREATE TABLE ca_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE TABLE audit (
        id ${id},
        time BIGINT NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL,
        identity TEXT NOT NULL,
        caller TEXT NOT NULL,
        method TEXT NOT NULL,
        cluster TEXT NOT NULL,
        client_cluster TEXT,
        serial TEXT,
        not_before BIGINT,
        not_after BIGINT,
        message TEXT
      );
      CREATE INDEX audit_identity ON audit (identity, id);
      CREATE INDEX audit_time ON audit (time);
      CREATE TABLE token_keys (
        kid TEXT PRIMARY KEY,
        alg TEXT NOT NULL,
        private_key_pem TEXT NOT NULL,
        created_at BIGINT NOT NULL
      );
    `;

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'ca metadata, issuance audit, token issuer keys',
    sql: { sqlite: auditTable('INTEGER PRIMARY KEY'), postgres: auditTable('BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY') },
  },
  {
    version: 2,
    name: 'ca material and leader terms (replicated CA), audit by outcome and time',
    // ca_material: every root and intermediate ever committed, one row per (kind, cluster,
    // generation). The primary key is the fence: two replicas racing to commit the same next
    // generation cannot both succeed, so a renewal yields exactly one CA certificate.
    // leader_terms: who led and since when (dashboard, failover measurements).
    sql: `
      CREATE TABLE ca_material (
        kind TEXT NOT NULL,
        cluster TEXT NOT NULL,
        generation INTEGER NOT NULL,
        cert_pem TEXT NOT NULL,
        key_pem TEXT,
        chain_pem TEXT NOT NULL,
        roots_pem TEXT NOT NULL,
        fingerprint256 TEXT NOT NULL,
        serial TEXT NOT NULL,
        not_before BIGINT NOT NULL,
        not_after BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        PRIMARY KEY (kind, cluster, generation)
      );
      CREATE TABLE leader_terms (
        term INTEGER PRIMARY KEY,
        holder TEXT NOT NULL,
        acquired_at BIGINT NOT NULL
      );
      CREATE INDEX audit_outcome_time ON audit (outcome, time);
    `,
  },
  {
    version: 3,
    name: 'audit by outcome and expiry (dashboard: certificates still valid)',
    // Counting valid certificates then reads only the live ones, however long the audit grows.
    sql: 'CREATE INDEX audit_outcome_not_after ON audit (outcome, not_after);',
  },
  {
    version: 4,
    name: 'audit: drop the index on time alone',
    // Every time-bounded query also names the outcome, so (outcome, time) serves it; the extra
    // index was SQLite work on every issued certificate.
    sql: 'DROP INDEX IF EXISTS audit_time;',
  },
  {
    version: 5,
    name: 'audit by identity (SQLite): an index folded in bulk instead of one kept per row',
    // Each audit row lands at its identity's end of an (identity, id) index, so a commit dirties
    // pages all over it and a row's cost grows with the table. audit_by_identity holds the same
    // pairs, written in bulk, sorted, every few thousand rows (sqlite/identity-fold.ts), and
    // audit_fold how far; rows beyond it are found by scanning the short unfolded tail. PostgreSQL
    // keeps its index.
    sql: {
      sqlite: `
        CREATE TABLE audit_by_identity (identity TEXT NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (identity, id)) WITHOUT ROWID;
        CREATE TABLE audit_fold (one INTEGER PRIMARY KEY CHECK (one = 1), folded_to INTEGER NOT NULL);
        INSERT INTO audit_by_identity (identity, id) SELECT identity, id FROM audit ORDER BY identity, id;
        INSERT INTO audit_fold (one, folded_to) SELECT 1, COALESCE(MAX(id), 0) FROM audit;
        DROP INDEX IF EXISTS audit_identity;
      `,
      postgres: 'SELECT 1;',
    },
  },
  {
    version: 6,
    name: 'upstream renewals in progress, shared rate budgets (replicas with an upstream CA)',
    // Written before the upstream is asked for an intermediate, so that a leader killed half-way
    // leaves the key, the CSR, the idempotency token and (once known) the certificate's ARN to the
    // next leader, which finishes that request instead of paying for another certificate.
    // rate_budgets: token buckets every replica draws from (PCA's IssueCertificate quota in RA mode).
    sql: `
      CREATE TABLE upstream_renewals (
        cluster TEXT NOT NULL,
        generation INTEGER NOT NULL,
        upstream TEXT NOT NULL,
        key_pem TEXT NOT NULL,
        csr_pem TEXT NOT NULL,
        idempotency_token TEXT NOT NULL,
        requested_at BIGINT NOT NULL,
        certificate_ref TEXT,
        created_by TEXT NOT NULL,
        PRIMARY KEY (cluster, generation)
      );
      CREATE TABLE rate_budgets (
        name TEXT PRIMARY KEY,
        tokens DOUBLE PRECISION NOT NULL,
        updated_at BIGINT NOT NULL
      );
    `,
  },
];

/**
 * The migrations a database still needs, given the versions it has applied. A database migrated by
 * a newer meshca (a version beyond ours) is refused rather than used with a schema we do not know.
 */
export function pendingMigrations<M extends { version: number }>(all: readonly M[], applied: ReadonlySet<number>, database: string): M[] {
  const latest = all[all.length - 1].version;
  const newest = Math.max(0, ...applied);
  if (newest > latest) {
    throw new MeshcaError(
      'failed_precondition',
      'schema_too_new',
      `${database} has schema version ${newest}, newer than this meshca understands (${latest}); run a newer meshca`,
    );
  }
  return all.filter((m) => !applied.has(m.version));
}
