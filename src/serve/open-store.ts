import { existsSync, mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import { isReplicated } from '../ca/material/replicated.js';
import type { ServeConfig } from '../config/index.js';
import { relayAudit } from '../server/audit-relay.js';
import type { RolePlan } from '../server/role.js';
import type { Store } from '../store/index.js';
import { openStore } from '../store/open.js';
import { SqliteStore } from '../store/sqlite/index.js';
import { withoutAudit, type AuditSetting } from './audit-setting.js';

/**
 * The store of `meshca serve`: SQLite or PostgreSQL, relayed to the primary in a worker on SQLite,
 * checkpointed in the background where SQLite is written; failed audit writes are also told to
 * onAuditError (the audit-failure metric).
 */
export async function openServeStore(
  config: ServeConfig,
  plan: RolePlan,
  audit: AuditSetting,
  log: Logger,
  onAuditError: () => void,
): Promise<Store> {
  // The state directory is the first thing serve creates, so it is said first, before the root and the listeners.
  if (!existsSync(config.dir)) {
    mkdirSync(config.dir, { recursive: true });
    log.info({ dir: config.dir }, `created state directory ${config.dir}`);
  }
  let store: Store = await openStore(
    config,
    (e) => log.error({ err: e }, 'audit store background work failed (unwritten audit rows stay queued)'),
    onAuditError,
  );
  // A worker on the embedded store hands its audit rows to the primary, the one SQLite writer.
  if (plan.relayAudit && typeof process.send === 'function' && !isReplicated(store))
    store = relayAudit(store, process.send.bind(process), { flushMs: config.auditFlushMs, batchSize: config.auditBatchSize });
  // The process that writes SQLite checkpoints its WAL from a worker thread (started once the WAL is large), never on the event loop.
  else if (store instanceof SqliteStore) store.checkpointInBackground();
  if (audit !== 'on') {
    store = withoutAudit(store);
    log.warn({ audit }, 'issuances are NOT audited: a benchmark setting that measures what the audit costs, never for production');
  }
  return store;
}
