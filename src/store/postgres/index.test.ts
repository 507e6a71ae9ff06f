import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { checkAuditStats } from '../../../test/helpers/audit-stats.js';
import { startPostgres, type PgCluster } from '../../../test/helpers/postgres.js';
import type { CaMaterialRow } from '../ca-material.js';
import type { AuditEntry } from '../index.js';
import { MIGRATIONS } from '../migrations.js';
import { GroupCommitQueue } from './audit-queue.js';
import { openPgStore } from './index.js';
import { LOCKS, LOCK_NAMESPACE } from './locks.js';

let cluster: PgCluster;
let n = 0;
const freshDb = () => cluster.createDatabase(`store_test_${++n}`);

before(async () => {
  cluster = await startPostgres();
});
after(async () => {
  await cluster?.stop();
});

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

function materialRow(over: Partial<CaMaterialRow> = {}): CaMaterialRow {
  return {
    kind: 'intermediate',
    cluster: 'east',
    generation: 1,
    certPem: 'C',
    keyPem: 'K',
    chainPem: 'CH',
    rootsPem: 'R',
    fingerprint256: 'F',
    serial: 'S',
    notBefore: new Date(1000),
    notAfter: new Date(2000),
    createdAt: new Date(1500),
    createdBy: 'r1',
    ...over,
  };
}

test('replicas migrating at once apply each migration once; meta and token keys round-trip', async () => {
  const url = await freshDb();
  const stores = await Promise.all([openPgStore(url), openPgStore(url), openPgStore(url)]);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const versions = (await c.query('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => r.version);
  await c.end();
  assert.deepEqual(
    versions,
    MIGRATIONS.map((m) => m.version),
  );
  const [a, b] = stores;
  await a.setMeta('k', 'v1');
  await b.setMeta('k', 'v2');
  assert.equal(await a.getMeta('k'), 'v2');
  assert.equal(await a.getMeta('missing'), undefined);
  await a.addTokenKey({ kid: 'a', alg: 'ES256', privateKeyPem: 'PEM', createdAt: new Date(5) });
  assert.deepEqual(await b.listTokenKeys(), [{ kid: 'a', alg: 'ES256', privateKeyPem: 'PEM', createdAt: new Date(5) }]);
  await Promise.all(stores.map((s) => s.close()));
});

test('audit rows are batched, none is lost on close, and queries match the SQLite store', async () => {
  const url = await freshDb();
  const s = await openPgStore(url, { flushMs: 60_000, batchSize: 1000 });
  for (let i = 0; i < 250; i++) s.appendAudit(entry({ serial: `s${i}`, notBefore: new Date(1), notAfter: new Date(2) }));
  s.appendAudit(entry({ outcome: 'refused', reason: 'token_expired', identity: '', caller: '', method: '', message: 'token expired' }));
  assert.equal(s.pendingAudit(), 251, 'nothing written before the flush interval');
  await s.close();
  const r = await openPgStore(url);
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

test('flush() waits for the rows queued before it: concurrent durable callers share commits', async () => {
  const url = await freshDb();
  const s = await openPgStore(url, { flushMs: 1000, batchSize: 500 });
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await Promise.all(
    Array.from({ length: 200 }, async (_, i) => {
      s.appendAudit(entry({ serial: `d${i}` }));
      await s.flush();
      const got = await c.query('SELECT 1 FROM audit WHERE serial = $1', [`d${i}`]);
      assert.equal(got.rowCount, 1, `row d${i} is committed when flush() resolves`);
    }),
  );
  await c.end();
  await s.close();
});

test('a failed batch is retried in order; its waiters are told', async () => {
  let fail = 2;
  const written: number[] = [];
  const errors: unknown[] = [];
  const q = new GroupCommitQueue<number>(
    async (rows) => {
      if (fail-- > 0) throw new Error('database down');
      written.push(...rows);
    },
    { flushMs: 0, batchSize: 10, onError: (e) => errors.push(e) },
  );
  for (let i = 0; i < 5; i++) q.append(i);
  await assert.rejects(q.flush(), /database down/);
  await q.close();
  assert.deepEqual(written, [0, 1, 2, 3, 4]);
  assert.ok(errors.length >= 1);
});

test('dashboard aggregates: per-minute buckets, per-cluster valid counts, refusal reasons', async () => {
  await checkAuditStats(await openPgStore(await freshDb()));
});

test('CA material: one row per generation, fenced by the leader lock, announced to listeners', async () => {
  const url = await freshDb();
  const a = await openPgStore(url);
  const b = await openPgStore(url);
  const heard: string[] = [];
  const unwatch = await b.watchMaterial((kind, cl, gen) => heard.push(`${kind}/${cl}/${gen}`));
  assert.equal(await a.commitMaterial(materialRow()), true);
  assert.equal(await b.commitMaterial(materialRow({ certPem: 'other' })), false, 'the same generation twice: the second loses');
  assert.equal((await b.latestMaterial('intermediate', 'east'))?.certPem, 'C');

  // A fence naming a session that holds the leader lock lets the commit through; one that does not is refused.
  const holder = new pg.Client({ connectionString: url });
  await holder.connect();
  await holder.query('SELECT pg_advisory_lock($1, $2)', [LOCK_NAMESPACE, LOCKS.leader]);
  const pid = Number((await holder.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
  const fence = { key1: LOCK_NAMESPACE, key2: LOCKS.leader, pid };
  assert.equal(await a.commitMaterial(materialRow({ generation: 2 }), fence), true);
  await holder.end();
  await assert.rejects(a.commitMaterial(materialRow({ generation: 3 }), fence), /no longer holds the leader lock/);
  assert.deepEqual(
    (await a.materialHistory('intermediate', 'east')).map((r) => r.generation),
    [1, 2],
  );
  assert.deepEqual(
    (await a.currentMaterial()).map((r) => [r.cluster, r.generation]),
    [['east', 2]],
  );

  for (let i = 0; i < 50 && heard.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(heard, ['intermediate/east/1', 'intermediate/east/2']);
  await unwatch();
  assert.equal(await a.recordLeaderTerm('r1', new Date(10)), 1);
  assert.equal(await b.recordLeaderTerm('r2', new Date(20)), 2);
  assert.deepEqual(
    (await a.leaderTerms(5)).map((t) => t.holder),
    ['r2', 'r1'],
  );
  await a.close();
  await b.close();
});

test('an unreachable database is a clear error naming the URL without its password', async () => {
  const { openPgStore: open } = await import('./index.js');
  await assert.rejects(open('postgres://meshca:secret@127.0.0.1:1/x'), (e: Error) => {
    assert.match(e.message, /cannot use the PostgreSQL store postgres:\/\/meshca:\*\*\*@127\.0\.0\.1:1\/x/);
    assert.doesNotMatch(e.message, /secret/);
    return true;
  });
});
