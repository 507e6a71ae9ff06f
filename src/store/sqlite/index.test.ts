import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AuditEntry } from '../index.js';
import { DB_FILE_NAME, FOLD_MAX_IDS, SqliteStore, openSqliteStore } from './index.js';
import { MIGRATIONS } from './migrations.js';

function entry(over: Partial<AuditEntry> = {}): AuditEntry {
  return { time: new Date(1_700_000_000_000), outcome: 'issued', reason: 'issued', identity: 'spiffe://cluster.local/ns/a/sa/b', caller: 'x', method: 'local-token', cluster: 'default', ...over };
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

test('audit by identity: newest first across the folded rows and the unfolded tail, with filters, and through the index', async () => {
  const { default: Database } = await import('better-sqlite3');
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  // Folds at 40 rows; 100 rows over 4 identities in batches of 10, so the last fold leaves a tail.
  const s = openSqliteStore(dir, { flushMs: 60_000, batchSize: 10, foldRows: 40, foldAfterMs: 60_000 });
  const ids = ['a', 'b', 'c', 'd'].map((x) => `spiffe://cluster.local/ns/n/sa/${x}`);
  for (let i = 0; i < 100; i++) {
    s.appendAudit(entry({ identity: ids[i % 4], serial: `s${i}`, ...(i % 10 === 3 ? { outcome: 'refused', reason: 'rate_limited' } : {}) }));
  }
  await s.flush();
  const db = new Database(join(dir, DB_FILE_NAME), { readonly: true });
  try {
    const mark = db.prepare('SELECT folded_to FROM audit_fold').pluck().get() as number;
    const pairs = db.prepare('SELECT COUNT(*) FROM audit_by_identity').pluck().get() as number;
    assert.equal(mark, 80, 'folded at 40 and 80 rows');
    assert.equal(pairs, 80);
    const plan = (db.prepare('EXPLAIN QUERY PLAN SELECT audit.* FROM audit_by_identity i JOIN audit ON audit.id = i.id WHERE i.identity = ? AND i.id <= ? ORDER BY i.id DESC LIMIT 5').all('x', 1) as { detail: string }[])
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
  assert.deepEqual((await s.queryAudit({ identity: ids[3], reason: 'rate_limited', limit: 2 })).map((r) => r.serial), ['s83', 's63']);
  assert.deepEqual(await s.queryAudit({ identity: 'spiffe://cluster.local/ns/n/sa/nobody' }), []);
  await s.close();
  // close() folds the tail, and the answers do not change.
  const db2 = new Database(join(dir, DB_FILE_NAME), { readonly: true });
  assert.equal(db2.prepare('SELECT folded_to FROM audit_fold').pluck().get(), 100);
  assert.equal(db2.prepare('SELECT COUNT(*) FROM audit_by_identity').pluck().get(), 100);
  db2.close();
  const r = openSqliteStore(dir);
  assert.deepEqual((await r.queryAudit({ identity: ids[1], limit: 1000 })).map((x) => x.serial), expectB);
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
  const ins = old.prepare("INSERT INTO audit (time, outcome, reason, identity, caller, method, cluster) VALUES (0, 'issued', 'issued', ?, '', '', 'default')");
  for (let i = 0; i < 30; i++) ins.run(`id-${i % 3}`);
  old.close();

  const s = openSqliteStore(dir, { foldAfterMs: 60_000 });
  assert.equal(s.schemaVersion(), MIGRATIONS[MIGRATIONS.length - 1].version);
  const got = await s.queryAudit({ identity: 'id-1', limit: 1000 });
  assert.deepEqual(got.map((r) => r.id), [29, 26, 23, 20, 17, 14, 11, 8, 5, 2]);
  // Another writer (a CLI on the same state directory) appends rows this store never counted.
  const other = new Database(path);
  for (let i = 0; i < 5; i++) other.prepare("INSERT INTO audit (time, outcome, reason, identity, caller, method, cluster) VALUES (0, 'issued', 'issued', 'id-1', '', '', 'default')").run();
  other.close();
  assert.deepEqual((await s.queryAudit({ identity: 'id-1', limit: 3 })).map((r) => r.id), [35, 34, 33], 'the tail is scanned');
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
  assert.deepEqual((await s.queryAudit({ identity: 'x', limit: 3 })).map((r) => r.serial), ['a9', 'a8', 'a7']);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(other.prepare('SELECT folded_to FROM audit_fold').pluck().get(), 10, 'the retry folded them');
  assert.equal(other.prepare('SELECT COUNT(*) FROM audit_by_identity').pluck().get(), 10);
  other.close();
  assert.deepEqual((await s.queryAudit({ identity: 'x', limit: 100 })).map((r) => r.serial), Array.from({ length: 10 }, (_, i) => `a${9 - i}`));
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
  const ins = other.prepare("INSERT INTO audit (time, outcome, reason, identity, caller, method, cluster) VALUES (0, 'issued', 'issued', ?, '', '', 'default')");
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
  assert.equal(other.prepare("SELECT COUNT(*) FROM audit_by_identity WHERE identity = 'id-3'").pluck().get(), other.prepare("SELECT COUNT(*) FROM audit WHERE identity = 'id-3'").pluck().get());
  other.close();
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
    const indexes = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit' AND sql IS NOT NULL ORDER BY name").all() as { name: string }[]).map((r) => r.name);
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

/** Bytes in the database's WAL file, 0 when there is none. */
function walSize(dir: string): number {
  try {
    return statSync(join(dir, `${DB_FILE_NAME}-wal`)).size;
  } catch {
    return 0;
  }
}

test('WAL checkpoints run on a worker thread: the serving connection never checkpoints, the WAL stays small, close truncates it', async () => {
  const run = async (background: boolean) => {
    const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
    const s = openSqliteStore(dir, { flushMs: 60_000, batchSize: 100_000 });
    if (background) s.checkpointInBackground(40, { startAtWalBytes: 0 });
    else (s as unknown as { db: { pragma(p: string): unknown } }).db.pragma('wal_autocheckpoint = 0');
    let peak = 0;
    for (let batch = 0; batch < 12; batch++) {
      for (let i = 0; i < 400; i++) s.appendAudit(entry({ identity: `spiffe://cluster.local/ns/a/sa/w${batch}-${i}`, serial: `${batch}-${i}` }));
      await s.flush();
      peak = Math.max(peak, walSize(dir));
      await new Promise((r) => setTimeout(r, 120));
    }
    await s.close();
    const after = walSize(dir);
    const db = new (await import('better-sqlite3')).default(join(dir, DB_FILE_NAME), { readonly: true });
    const rows = (db.prepare('SELECT COUNT(*) AS n FROM audit').get() as { n: number }).n;
    db.close();
    return { peak, after, rows };
  };
  const bg = await run(true);
  const none = await run(false);
  assert.equal(bg.rows, 4800);
  assert.equal(none.rows, 4800);
  // Without any checkpoint the WAL holds every batch; with the background checkpointer it is reused.
  assert.ok(bg.peak * 3 < none.peak, `WAL peak ${bg.peak} with background checkpoints vs ${none.peak} without`);
  assert.equal(bg.after, 0, 'TRUNCATE checkpoint on close');
});

test('under steady writes the WAL starts over after each checkpoint instead of growing with the load', async () => {
  // Commits a millisecond apart, as a loaded primary or durable issuance makes them: without turns
  // a commit landed during nearly every checkpoint, no checkpoint backfilled the whole WAL, and the
  // WAL never started over (about 60 MB after 1.5 s of this loop; SQLite never shrinks it either).
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  const s = openSqliteStore(dir, { flushMs: 60_000, batchSize: 100_000 });
  s.checkpointInBackground(20, { startAtWalBytes: 0 });
  let peak = 0;
  let n = 0;
  for (const until = Date.now() + 1500; Date.now() < until; ) {
    for (let i = 0; i < 60; i++, n++) s.appendAudit(entry({ identity: `spiffe://cluster.local/ns/a/sa/w${n % 1000}`, serial: `${n}`.padStart(32, '0') }));
    await s.flush();
    peak = Math.max(peak, walSize(dir));
    await new Promise((r) => setTimeout(r, 1));
  }
  await s.close();
  const db = new (await import('better-sqlite3')).default(join(dir, DB_FILE_NAME), { readonly: true });
  const rows = (db.prepare('SELECT COUNT(*) AS n FROM audit').get() as { n: number }).n;
  db.close();
  assert.equal(rows, n);
  assert.ok(n > 10_000, `${n} rows written`);
  // Each checkpoint's worth is about 20 ms of this loop, well under a megabyte.
  assert.ok(peak < 8 << 20, `WAL peaked at ${peak} bytes over ${n} rows`);
  assert.equal(walSize(dir), 0, 'TRUNCATE checkpoint on close');
});

test('while a checkpoint has the WAL, background flushes wait for it and flush() waits at most 200 ms', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  const s = openSqliteStore(dir, { flushMs: 1, batchSize: 100_000 });
  // The checkpoint thread's side of the turn, taken by hand (2: checkpointing, 0: free).
  const turn = (s as unknown as { walTurn: Int32Array }).walTurn;
  Atomics.store(turn, 0, 2);
  s.appendAudit(entry({ serial: 'held' }));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(s.pendingAudit(), 1, 'the background flush waits for the checkpoint');
  Atomics.store(turn, 0, 0);
  for (let i = 0; i < 100 && s.pendingAudit() > 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(s.pendingAudit(), 0, 'and writes once it is done');
  assert.equal(Atomics.load(turn, 0), 0, 'the writer gave the turn back');
  // flush() waits too, but a checkpoint that never ends does not hold durable issuance up for long.
  Atomics.store(turn, 0, 2);
  s.appendAudit(entry({ serial: 'forced' }));
  const t0 = Date.now();
  await s.flush();
  const waited = Date.now() - t0;
  assert.equal(s.pendingAudit(), 0);
  assert.ok(waited >= 190 && waited < 2000, `flush waited ${waited} ms`);
  assert.equal(Atomics.load(turn, 0), 2, 'a write beside the checkpoint leaves its turn alone');
  Atomics.store(turn, 0, 0);
  const rows = await s.queryAudit({ limit: 10 });
  assert.deepEqual(rows.map((r) => r.serial).sort(), ['forced', 'held']);
  await s.close();
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
      e.reason === 'schema_too_new' && e.message === `the state database ${join(dir, DB_FILE_NAME)} has schema version 99, newer than this meshca understands (${latest}); run a newer meshca`,
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

test('the checkpoint thread starts only once the WAL is large, stops (truncating the WAL) when writes stop, and starts again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  const s = openSqliteStore(dir, { flushMs: 60_000, batchSize: 100_000 });
  s.checkpointInBackground(30, { startAtWalBytes: 256 << 10, idleStopMs: 200 });
  let written = 0;
  const write = async (n: number, tag: string) => {
    written += n;
    for (let i = 0; i < n; i++) s.appendAudit(entry({ identity: `spiffe://cluster.local/ns/a/sa/${tag}-${i}`, serial: `${tag}-${i}` }));
    await s.flush();
  };
  await write(20, 'small');
  assert.ok(walSize(dir) < 256 << 10, `WAL ${walSize(dir)}`);
  assert.equal(s.checkpointerRunning(), false, 'a small WAL starts no thread');
  let batches = 0;
  while (walSize(dir) < 256 << 10 && batches < 50) await write(400, `big${batches++}`);
  await s.flush();
  assert.equal(s.checkpointerRunning(), true, `started once the WAL reached ${walSize(dir)} bytes`);
  // No more writes: after idleStopMs it checkpoints with TRUNCATE and exits.
  for (let i = 0; i < 100 && s.checkpointerRunning(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(s.checkpointerRunning(), false, 'stopped when idle');
  assert.equal(walSize(dir), 0, 'the WAL was truncated on stop');
  batches = 0;
  while (!s.checkpointerRunning() && batches < 50) await write(400, `again${batches++}`);
  assert.equal(s.checkpointerRunning(), true, 'started again');
  await s.close();
  assert.equal(walSize(dir), 0);
  const db = new (await import('better-sqlite3')).default(join(dir, DB_FILE_NAME), { readonly: true });
  const rows = (db.prepare('SELECT COUNT(*) AS n FROM audit').get() as { n: number }).n;
  db.close();
  assert.equal(rows, written, 'every row written across the thread starting and stopping');
});
