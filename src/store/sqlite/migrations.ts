/**
 * Numbered schema migrations, applied in order inside one transaction each and recorded in
 * schema_migrations. Never edit a released migration: add the next number. The SQL avoids
 * SQLite-only syntax so the PostgreSQL store can share it (BIGINT/TEXT, integer-millisecond times).
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'ca metadata, issuance audit, token issuer keys',
    sql: `
      CREATE TABLE ca_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
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
    `,
  },
];
