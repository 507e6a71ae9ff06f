import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openSqliteStore } from '../store/sqlite/index.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { auditSetting, withoutAudit } from './audit-setting.js';

test('MESHCA_AUDIT: unset, empty or "on" audits; "off" does not; anything else is refused by name', () => {
  assert.equal(auditSetting({}), 'on');
  assert.equal(auditSetting({ MESHCA_AUDIT: '' }), 'on');
  assert.equal(auditSetting({ MESHCA_AUDIT: 'on' }), 'on');
  assert.equal(auditSetting({ MESHCA_AUDIT: 'off' }), 'off (MESHCA_AUDIT=off)');
  for (const v of ['OFF', 'false', '0', 'no'])
    assert.throws(
      () => auditSetting({ MESHCA_AUDIT: v }),
      (e: Error & { reason?: string }) => e.reason === 'bad_audit_setting' && e.message.includes(`got "${v}"`),
      v,
    );
});

test('withoutAudit discards rows and leaves the rest of the store working', async () => {
  const tmp = tempDir('meshca-without-audit-');
  const real = openSqliteStore(tmp.path);
  try {
    const entry = {
      time: new Date(),
      outcome: 'issued' as const,
      reason: 'issued',
      identity: 'spiffe://cluster.local/ns/a/sa/b',
      caller: 'x',
      method: 'local-token',
      cluster: 'default',
    };
    real.appendAudit(entry);
    const store = withoutAudit(real);
    store.appendAudit({ ...entry, identity: 'spiffe://cluster.local/ns/a/sa/c' });
    await store.setMeta('k', 'v');
    assert.equal(await store.getMeta('k'), 'v');
    await store.flush();
    const rows = await store.queryAudit({});
    assert.deepEqual(
      rows.map((r) => r.identity),
      ['spiffe://cluster.local/ns/a/sa/b'],
      'only the row given to the real store',
    );
  } finally {
    await real.close();
    tmp.cleanup();
  }
});
