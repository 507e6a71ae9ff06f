import type pg from 'pg';
import { MIGRATIONS, migrationSql, pendingMigrations } from '../migrations.js';
import { LOCKS, LOCK_NAMESPACE } from './locks.js';

/**
 * Brings the schema up to date. Replicas starting together all try: a transaction-scoped advisory
 * lock lets one migrate while the others wait and then find nothing left to do. All pending
 * migrations apply in one transaction (PostgreSQL DDL is transactional), so a crash leaves the
 * schema at the old version, never half-way.
 */
export async function migratePostgres(client: pg.ClientBase, where: string): Promise<number> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_NAMESPACE, LOCKS.migrate]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)',
    );
    const applied = new Set((await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map((r) => r.version));
    for (const m of pendingMigrations(MIGRATIONS, applied, `the database ${where}`)) {
      await client.query(migrationSql(m, 'postgres'));
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
    }
    await client.query('COMMIT');
    return MIGRATIONS[MIGRATIONS.length - 1].version;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {});
    throw e;
  }
}
