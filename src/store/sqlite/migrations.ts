import type Database from 'better-sqlite3';
import { MIGRATIONS as SHARED, migrationSql, pendingMigrations } from '../migrations.js';

/** SQLite's view of the shared numbered migrations (src/store/migrations.ts). */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = SHARED.map((m) => ({ version: m.version, name: m.name, sql: migrationSql(m, 'sqlite') }));

/** Applies the pending migrations, one transaction each; `where` names the database in a refusal. */
export function migrateSqlite(db: Database.Database, where: string): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
  const applied = new Set((db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version));
  for (const m of pendingMigrations(MIGRATIONS, applied, where)) {
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
    })();
  }
}

export function schemaVersion(db: Database.Database): number {
  return (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number }).v;
}
