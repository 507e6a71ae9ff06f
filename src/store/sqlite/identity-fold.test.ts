import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AuditEntry } from '../index.js';
import { DB_FILE_NAME, FOLD_MAX_IDS, SqliteStore, openSqliteStore } from './index.js';
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

test('audit by identity: newest first across the folded rows and the unfolded tail, with filters, and through the index', async () => {
  const { default: Database } = await import('better-sqlite3');
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  // Folds at 40 rows; 100 rows over 4 identities in batches of 10, so the last fold leaves a tail.
  const s = openSqliteStore(dir, { flushMs: 60_000, batchSize: 10, foldRows: 40, foldAfterMs: 60_000 });
  const ids = ['a', 'b', 'c', 'd'].map((x) => `spiffe://cluster.local/ns/n/sa/${x}`);
  for (let i = 0; i < 100; i++) {
    s.appendAudit(
      entry({ identity: ids[i % 4], serial: `s${i}`, ...(i % 10 === 3 ? { outcome: 'refused', reason: 'rate_limited' } : {}) }),
    );
  }
  await s.flush();
  const db = new Database(join(dir, DB_FILE_NAME), { readonly: true });
  try {
    const mark = db.prepare('SELECT folded_to FROM audit_fold').pluck().get() as number;
    const pairs = db.prepare('SELECT COUNT(*) FROM audit_by_identity').pluck().get() as number;
    assert.equal(mark, 80, 'folded at 40 and 80 rows');
    assert.equal(pairs, 80);
    const plan = (
      db
        .prepare(
          'EXPLAIN QUERY PLAN SELECT audit.* FROM audit_by_identity i JOIN audit ON audit.id = i.id WHERE i.identity = ? AND i.id <= ? ORDER BY i.id DESC LIMIT 5',
        )
        .all('x', 1) as { detail: string }[]
    )
      .map((r) => r.detail)
      .join('; ');
    assert.match(plan, /SEARCH i USING PRIMARY KEY \(identity=\? AND id<\?\)/, plan);
    assert.doesNotMatch(plan, /TEMP B-TREE/, `no sort: ${plan}`);
  } finally {
    db.close();
  }
  // Identity b holds rows 1, 5, ..., 97: 95 and 99 are past the mark (80), the rest folded.
  const expectB = Array.from({ length: 25 }, (_, k) => `s${97 - 4 * k}`);
  for (const limit of [1, 5, 25, 1000]) {
    assert.deepEqual(
      (await s.queryAudit({ identity: ids[1], limit })).map((r) => r.serial),
      expectB.slice(0, limit),
      `limit ${limit}`,
    );
  }
  const refusedD = (await s.queryAudit({ identity: ids[3], outcome: 'refused' })).map((r) => r.serial);
  assert.deepEqual(refusedD, ['s83', 's63', 's43', 's23', 's3']);
  assert.deepEqual(
    (await s.queryAudit({ identity: ids[3], reason: 'rate_limited', limit: 2 })).map((r) => r.serial),
    ['s83', 's63'],
  );
  assert.deepEqual(await s.queryAudit({ identity: 'spiffe://cluster.local/ns/n/sa/nobody' }), []);
  await s.close();
  // close() folds the tail, and the answers do not change.
  const db2 = new Database(join(dir, DB_FILE_NAME), { readonly: true });
  assert.equal(db2.prepare('SELECT folded_to FROM audit_fold').pluck().get(), 100);
  assert.equal(db2.prepare('SELECT COUNT(*) FROM audit_by_identity').pluck().get(), 100);
  db2.close();
  const r = openSqliteStore(dir);
  assert.deepEqual(
    (await r.queryAudit({ identity: ids[1], limit: 1000 })).map((x) => x.serial),
    expectB,
  );
  await r.close();
});

test('audit by identity: a database from before the folded index gets its pairs at migration, and rows written by another process are folded too', async () => {
  const { default: Database } = await import('better-sqlite3');
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  const path = join(dir, DB_FILE_NAME);
  // A version-4 database, as the previous release left it, with 30 audit rows.
  const old = new Database(path);
  old.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
  for (const m of MIGRATIONS.filter((x) => x.version <= 4)) {
    old.exec(m.sql);
    old.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)').run(m.version, m.name);
  }
  const ins = old.prepare(
    "INSERT INTO audit (time, outcome, reason, identity, caller, method, cluster) VALUES (0, 'issued', 'issued', ?, '', '', 'default')",
  );
  for (let i = 0; i < 30; i++) ins.run(`id-${i % 3}`);
  old.close();

  const s = openSqliteStore(dir, { foldAfterMs: 60_000 });
  assert.equal(s.schemaVersion(), MIGRATIONS[MIGRATIONS.length - 1].version);
  const got = await s.queryAudit({ identity: 'id-1', limit: 1000 });
  assert.deepEqual(
    got.map((r) => r.id),
    [29, 26, 23, 20, 17, 14, 11, 8, 5, 2],
  );
  // Another writer (a CLI on the same state directory) appends rows this store never counted.
  const other = new Database(path);
  for (let i = 0; i < 5; i++)
    other
      .prepare(
        "INSERT INTO audit (time, outcome, reason, identity, caller, method, cluster) VALUES (0, 'issued', 'issued', 'id-1', '', '', 'default')",
      )
      .run();
  other.close();
  assert.deepEqual(
    (await s.queryAudit({ identity: 'id-1', limit: 3 })).map((r) => r.id),
    [35, 34, 33],
    'the tail is scanned',
  );
  s.appendAudit(entry({ identity: 'id-1' }));
  await s.close();
  const check = new Database(path, { readonly: true });
  assert.equal(check.prepare('SELECT folded_to FROM audit_fold').pluck().get(), 36);
  assert.equal(check.prepare("SELECT COUNT(*) FROM audit_by_identity WHERE identity = 'id-1'").pluck().get(), 16);
  check.close();
});

test('a fold that fails is reported, changes nothing, and is retried until it succeeds', async () => {
  const { default: Database } = await import('better-sqlite3');
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  const errors: unknown[] = [];
  const s = openSqliteStore(dir, { flushMs: 60_000, batchSize: 5, foldRows: 10, foldAfterMs: 50, onError: (e) => errors.push(e) });
  for (let i = 0; i < 5; i++) s.appendAudit(entry({ identity: 'x', serial: `a${i}` }));
  // Another connection takes the pairs table away: the fold at 10 rows must fail as a whole.
  const other = new Database(join(dir, DB_FILE_NAME));
  other.exec('ALTER TABLE audit_by_identity RENAME TO hidden');
  for (let i = 5; i < 10; i++) s.appendAudit(entry({ identity: 'x', serial: `a${i}` }));
  assert.equal(s.pendingAudit(), 0, 'the rows themselves are written');
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /audit_by_identity/);
  assert.equal(other.prepare('SELECT folded_to FROM audit_fold').pluck().get(), 0, 'the mark did not move');
  assert.equal(other.prepare('SELECT COUNT(*) FROM hidden').pluck().get(), 0);
  // Until the retry, the identity's rows are all in the tail, and the query still finds them.
  other.exec('ALTER TABLE hidden RENAME TO audit_by_identity');
  assert.deepEqual(
    (await s.queryAudit({ identity: 'x', limit: 3 })).map((r) => r.serial),
    ['a9', 'a8', 'a7'],
  );
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(other.prepare('SELECT folded_to FROM audit_fold').pluck().get(), 10, 'the retry folded them');
  assert.equal(other.prepare('SELECT COUNT(*) FROM audit_by_identity').pluck().get(), 10);
  other.close();
  assert.deepEqual(
    (await s.queryAudit({ identity: 'x', limit: 100 })).map((r) => r.serial),
    Array.from({ length: 10 }, (_, i) => `a${9 - i}`),
  );
  await s.close();
});

test('a backlog of unfolded rows is folded in bounded steps, starting when a store opens', async () => {
  const { default: Database } = await import('better-sqlite3');
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  const path = join(dir, DB_FILE_NAME);
  await openSqliteStore(dir).close();
  // Rows another writer added and nobody folded: more than two steps' worth.
  const n = 2 * FOLD_MAX_IDS + 5000;
  const other = new Database(path);
  const ins = other.prepare(
    "INSERT INTO audit (time, outcome, reason, identity, caller, method, cluster) VALUES (0, 'issued', 'issued', ?, '', '', 'default')",
  );
  other.transaction(() => {
    for (let i = 0; i < n; i++) ins.run(`id-${i % 7}`);
  })();
  const mark = () => other.prepare('SELECT folded_to FROM audit_fold').pluck().get() as number;
  const s = openSqliteStore(dir);
  assert.equal(mark(), FOLD_MAX_IDS, 'one step at open');
  const deadline = Date.now() + 10_000;
  while (mark() < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(mark(), n, 'the rest on later turns of the event loop');
  assert.equal(other.prepare('SELECT COUNT(*) FROM audit_by_identity').pluck().get(), n);
  await s.close();

  // close() folds a whole backlog before it returns.
  other.transaction(() => {
    for (let i = 0; i < n; i++) ins.run(`id-${i % 7}`);
  })();
  const s2 = new SqliteStore(path, { foldRows: 10 * n });
  assert.equal(mark(), n, 'below foldRows nothing is folded at open');
  await s2.close();
  assert.equal(mark(), 2 * n);
  assert.equal(
    other.prepare("SELECT COUNT(*) FROM audit_by_identity WHERE identity = 'id-3'").pluck().get(),
    other.prepare("SELECT COUNT(*) FROM audit WHERE identity = 'id-3'").pluck().get(),
  );
  other.close();
});
