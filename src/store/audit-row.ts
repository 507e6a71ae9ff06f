import type { AuditRecord } from './index.js';

/**
 * An audit row as either driver returns it: better-sqlite3 gives integers as numbers, pg gives
 * BIGINT columns as strings; times are integer milliseconds in both (portable SQL).
 */
export interface AuditRow {
  id: number | string;
  time: number | string;
  outcome: string;
  reason: string;
  identity: string;
  caller: string;
  method: string;
  cluster: string;
  client_cluster: string | null;
  serial: string | null;
  not_before: number | string | null;
  not_after: number | string | null;
  message: string | null;
}

export function auditRecordOf(r: AuditRow): AuditRecord {
  const rec: AuditRecord = {
    id: Number(r.id),
    time: new Date(Number(r.time)),
    outcome: r.outcome as AuditRecord['outcome'],
    reason: r.reason,
    identity: r.identity,
    caller: r.caller,
    method: r.method,
    cluster: r.cluster,
  };
  if (r.client_cluster !== null) rec.clientCluster = r.client_cluster;
  if (r.serial !== null) rec.serial = r.serial;
  if (r.not_before !== null) rec.notBefore = new Date(Number(r.not_before));
  if (r.not_after !== null) rec.notAfter = new Date(Number(r.not_after));
  if (r.message !== null) rec.message = r.message;
  return rec;
}
