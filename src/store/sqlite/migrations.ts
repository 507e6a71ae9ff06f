import { MIGRATIONS as SHARED, migrationSql } from '../migrations.js';

/** SQLite's view of the shared numbered migrations (src/store/migrations.ts). */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = SHARED.map((m) => ({ version: m.version, name: m.name, sql: migrationSql(m, 'sqlite') }));
