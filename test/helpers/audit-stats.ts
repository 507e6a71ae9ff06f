import assert from 'node:assert/strict';
import type { AuditEntry, StoreWithStats } from '../../src/store/index.js';

/**
 * The dashboard's audit aggregates, checked the same way on every store (SQLite in
 * src/store/stats-sql.test.ts, PostgreSQL in src/store/postgres/index.test.ts). Closes the store.
 */
export async function checkAuditStats(s: StoreWithStats): Promise<void> {
  const t0 = Date.UTC(2030, 0, 1, 12, 0, 0);
  const at = (min: number, sec = 0) => new Date(t0 + min * 60_000 + sec * 1000);
  const e = (over: Partial<AuditEntry>): AuditEntry => ({
    time: at(0),
    outcome: 'issued',
    reason: 'issued',
    identity: 'spiffe://cluster.local/ns/a/sa/b',
    caller: 'x',
    method: 'local-token',
    cluster: 'default',
    ...over,
  });
  s.appendAudit(e({ time: at(-10), notAfter: at(100) }));
  s.appendAudit(e({ time: at(0, 5), notAfter: at(100) }));
  s.appendAudit(e({ time: at(0, 50), notAfter: at(1) }));
  s.appendAudit(e({ time: at(2), cluster: 'east', notAfter: at(100) }));
  s.appendAudit(e({ time: at(2, 30), outcome: 'refused', reason: 'token_expired', message: 'expired' }));
  s.appendAudit(e({ time: at(3), outcome: 'refused', reason: 'token_expired', message: 'expired' }));
  s.appendAudit(e({ time: at(3, 1), outcome: 'refused', reason: 'identity_mismatch', message: 'no' }));
  await s.flush();
  const st = await s.auditStats({ since: at(0), bucketSeconds: 60, now: at(5), refusals: 2 });
  assert.deepEqual(st.buckets, [
    { start: at(0).getTime(), issued: 2, refused: 0 },
    { start: at(2).getTime(), issued: 1, refused: 1 },
    { start: at(3).getTime(), issued: 0, refused: 2 },
  ]);
  assert.deepEqual(
    st.clusters.map((c) => [c.cluster, c.issued, c.valid]),
    [
      ['default', 2, 2],
      ['east', 1, 1],
    ],
    'issued counts the window; valid counts every certificate not yet expired',
  );
  assert.deepEqual(st.reasons, [
    { reason: 'token_expired', count: 2 },
    { reason: 'identity_mismatch', count: 1 },
  ]);
  assert.deepEqual(
    st.recentRefusals.map((r) => [r.reason, r.message]),
    [
      ['identity_mismatch', 'no'],
      ['token_expired', 'expired'],
    ],
  );
  await s.close();
}
