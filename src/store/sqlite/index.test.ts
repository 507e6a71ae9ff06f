import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import type { AuditEntry } from '../index.js';
import { DB_FILE_NAME, SqliteStore, openSqliteStore } from './index.js';
import { MIGRATIONS } from './migrations.js';

function entry(over: Partial<AuditEntry> = {}): AuditEntry {
  return {
    time: new Date(1_700_000_000_000),
    outcome: 'issued',
    reason: 'issued',
    identity: 'spiffe://cluster.local/ns/a/sa/b',
    caller: 'x',
    method: 'local-token',
    cluster: 'default',
    ...over,
  };
}

test('migrations apply once; the file is private', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  const s = openSqliteStore(dir);
  assert.equal(s.schemaVersion(), MIGRATIONS[MIGRATIONS.length - 1].version);
  await s.setMeta('k', 'v1');
  await s.setMeta('k', 'v2');
  await s.close();
  assert.equal(statSync(join(dir, DB_FILE_NAME)).mode & 0o777, 0o600);
  const again = openSqliteStore(dir);
  assert.equal(await again.getMeta('k'), 'v2');
  assert.equal(await again.getMeta('missing'), undefined);
  await again.close();
});

test('audit rows are batched and none is lost on close', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  const s = openSqliteStore(dir, { flushMs: 60_000, batchSize: 1000 });
  for (let i = 0; i < 250; i++) s.appendAudit(entry({ serial: `s${i}`, notBefore: new Date(1), notAfter: new Date(2) }));
  s.appendAudit(entry({ outcome: 'refused', reason: 'token_expired', identity: '', caller: '', method: '', message: 'token expired' }));
  assert.equal(s.pendingAudit(), 251, 'nothing written before the flush interval');
  await s.close();
  const r = openSqliteStore(dir);
  const all = await r.queryAudit({ limit: 1000 });
  assert.equal(all.length, 251);
  assert.equal(all[0].reason, 'token_expired', 'newest first');
  assert.equal(all[0].serial, undefined);
  assert.equal(all[1].serial, 's249');
  assert.deepEqual(all[1].notAfter, new Date(2));
  assert.equal((await r.queryAudit({ outcome: 'refused' })).length, 1);
  assert.equal((await r.queryAudit({ identity: 'spiffe://cluster.local/ns/a/sa/b', limit: 5 })).length, 5);
  await r.close();
});

test('rows written 32 to a statement and the rest one by one come back field for field, in order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  const s = openSqliteStore(dir, { flushMs: 60_000, batchSize: 1000 });
  // 70 = two statements of 32 and six single rows; every optional field both set and absent.
  const written = Array.from({ length: 70 }, (_, i) =>
    entry({
      time: new Date(1_700_000_000_000 + i),
      outcome: i % 3 === 0 ? 'refused' : 'issued',
      reason: i % 3 === 0 ? 'identity_mismatch' : 'issued',
      identity: `spiffe://cluster.local/ns/a/sa/w${i}`,
      caller: i % 5 === 0 ? '' : `caller-${i}`,
      ...(i % 2 === 0 ? { serial: `0${i.toString(16)}`, notBefore: new Date(1000 * i), notAfter: new Date(1000 * i + 600_000) } : {}),
      ...(i % 4 === 1 ? { clientCluster: `west-${i}` } : {}),
      ...(i % 3 === 0 ? { message: `refused number ${i}` } : {}),
    }),
  );
  for (const e of written) s.appendAudit(e);
  await s.flush();
  const back = (await s.queryAudit({ limit: 1000 })).reverse();
  assert.deepEqual(
    back.map((r) => r.id),
    back.map((_, i) => back[0].id + i),
    'consecutive ids in the order appended',
  );
  assert.deepEqual(
    back.map(({ id: _id, ...rest }) => rest),
    written,
  );
  await s.close();
});

test('a full batch is written at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  const s = openSqliteStore(dir, { flushMs: 60_000, batchSize: 10 });
  for (let i = 0; i < 10; i++) s.appendAudit(entry());
  assert.equal(s.pendingAudit(), 0);
  assert.equal((await s.queryAudit({})).length, 10);
  await s.close();
});

test('token keys round-trip', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  const s = openSqliteStore(dir);
  await s.addTokenKey({ kid: 'a', alg: 'ES256', privateKeyPem: 'PEM', createdAt: new Date(5) });
  assert.deepEqual(await s.listTokenKeys(), [{ kid: 'a', alg: 'ES256', privateKeyPem: 'PEM', createdAt: new Date(5) }]);
  await s.close();
});

test('a corrupt database is a clear error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  writeFileSync(join(dir, DB_FILE_NAME), 'this is not sqlite '.repeat(100));
  assert.throws(() => new SqliteStore(join(dir, DB_FILE_NAME)), /state database .*meshca\.db is unreadable/);
});

test('every dashboard aggregate reads the audit through an index, and only the indexes issuance needs exist', async () => {
  const { default: Database } = await import('better-sqlite3');
  const { AUDIT_STATS_SQL } = await import('../stats-sql.js');
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  const s = openSqliteStore(dir);
  await s.close();
  const db = new Database(join(dir, DB_FILE_NAME), { readonly: true });
  try {
    const indexes = (
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit' AND sql IS NOT NULL ORDER BY name").all() as {
        name: string;
      }[]
    ).map((r) => r.name);
    // No per-row index on identity: audit_by_identity is folded in bulk (migration 5).
    assert.deepEqual(indexes, ['audit_outcome_not_after', 'audit_outcome_time']);
    for (const [name, sql] of Object.entries(AUDIT_STATS_SQL)) {
      const text = typeof sql === 'function' ? (sql as (p: string) => string)('?') : String(sql);
      const args = Array.from({ length: (text.match(/\?/g) ?? []).length }, () => 1);
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...args) as { detail: string }[]).map((r) => r.detail).join('; ');
      assert.match(plan, /USING (COVERING )?INDEX audit_/, `${name}: ${plan}`);
    }
  } finally {
    db.close();
  }
});

test('a database migrated by a newer meshca is refused, and left as it was', async () => {
  const { default: Database } = await import('better-sqlite3');
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  await openSqliteStore(dir).close();
  const db = new Database(join(dir, DB_FILE_NAME));
  db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, ?, 0)').run('from the future');
  db.close();
  const latest = MIGRATIONS[MIGRATIONS.length - 1].version;
  assert.throws(
    () => openSqliteStore(dir),
    (e: Error & { reason?: string }) =>
      e.reason === 'schema_too_new' &&
      e.message ===
        `the state database ${join(dir, DB_FILE_NAME)} has schema version 99, newer than this meshca understands (${latest}); run a newer meshca`,
  );
  const again = new Database(join(dir, DB_FILE_NAME), { readonly: true });
  assert.equal((again.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number }).v, 99);
  again.close();
  // The refused database was closed again: no descriptor of this process still points at it.
  const open = readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(join(dir, DB_FILE_NAME));
    } catch {
      return false;
    }
  });
  assert.deepEqual(open, []);
});

test('a failed audit batch is told to onAuditError once, kept queued, and written once the table is back', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  const audit: unknown[] = [];
  const other: unknown[] = [];
  const s = openSqliteStore(dir, { flushMs: 60_000, batchSize: 1000, onAuditError: (e) => audit.push(e), onError: (e) => other.push(e) });
  // A second connection takes the table away, as a broken or replaced database file would.
  const db = new Database(join(dir, DB_FILE_NAME));
  db.exec('ALTER TABLE audit RENAME TO audit_away');
  s.appendAudit(entry({ serial: 'kept' }));
  await assert.rejects(s.flush(), /no such table: audit/);
  assert.equal(audit.length, 1, 'one failed batch, one call');
  assert.deepEqual(other, audit, 'onError hears of it too');
  db.exec('ALTER TABLE audit_away RENAME TO audit');
  db.close();
  await s.flush();
  assert.equal(audit.length, 1);
  assert.deepEqual(
    (await s.queryAudit({})).map((r) => r.serial),
    ['kept'],
  );
  await s.close();
});
