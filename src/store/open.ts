import type { Store } from './index.js';
import type { PgStore } from './postgres/index.js';
import { openSqliteStore, type SqliteStore } from './sqlite/index.js';

export interface OpenStoreConfig {
  dir: string;
  store?: 'sqlite' | 'postgres';
  storeUrl?: string;
  auditFlushMs: number;
  auditBatchSize: number;
}

/** The store the configuration names: SQLite in the state directory, or a shared PostgreSQL database. */
export async function openStore(
  c: OpenStoreConfig,
  onError: (e: unknown) => void,
  onAuditError?: (e: unknown) => void,
): Promise<(SqliteStore | PgStore) & Store> {
  const kind = c.store ?? (c.storeUrl ? 'postgres' : 'sqlite');
  // pg is loaded only when a PostgreSQL store is configured.
  if (kind === 'postgres')
    return (await import('./postgres/index.js')).openPgStore(c.storeUrl!, {
      flushMs: c.auditFlushMs,
      batchSize: c.auditBatchSize,
      onError,
      onAuditError,
    });
  return openSqliteStore(c.dir, { flushMs: c.auditFlushMs, batchSize: c.auditBatchSize, onError, onAuditError });
}
