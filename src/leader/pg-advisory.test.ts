import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { startPostgres, type PgCluster } from '../../test/helpers/postgres.js';
import { PgAdvisoryElector } from './pg-advisory.js';

let cluster: PgCluster;
before(async () => {
  cluster = await startPostgres();
});
after(async () => {
  await cluster?.stop();
});

async function until(what: string, f: () => boolean, ms = 5000): Promise<number> {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

test('one leader at a time; a killed lock session hands over within a second; the old leader is aborted at once', async (t) => {
  const url = await cluster.createDatabase('elector');
  const a = new PgAdvisoryElector({ url, identity: 'a', retryMs: 100, checkMs: 200, rejoinDelayMs: 1000 });
  const b = new PgAdvisoryElector({ url, identity: 'b', retryMs: 100, checkMs: 200 });
  t.after(() => Promise.all([a.stop(), b.stop()]));
  const events: string[] = [];
  let aSignal: AbortSignal | undefined;
  a.onStartedLeading((s) => {
    aSignal = s;
    events.push('a+');
  });
  a.onStoppedLeading(() => events.push('a-'));
  b.onStartedLeading(() => events.push('b+'));
  await a.start();
  await b.start();
  assert.equal(a.isLeader(), true);
  assert.equal(b.isLeader(), false);
  assert.ok(a.fence(), 'the leader has a fence');
  assert.equal(b.fence(), undefined);

  // The database ends a's session (as when a's host dies or the network drops it).
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query('SELECT pg_terminate_backend($1)', [a.fence()!.pid]);
  const stepDown = await until('a steps down', () => !a.isLeader());
  assert.equal(aSignal?.aborted, true, "a's controllers are aborted");
  const takeover = await until('b leads', () => b.isLeader());
  assert.ok(takeover < 1500, `takeover took ${takeover} ms`);
  assert.ok(stepDown < 1500, `step-down took ${stepDown} ms`);
  assert.deepEqual(events.slice(0, 3), ['a+', 'a-', 'b+']);
  assert.equal(a.isLeader(), false, 'a steps aside while b holds the lock');

  // A clean stop releases the lock for the other at once.
  await b.stop();
  await until('a leads again', () => a.isLeader(), 2000);
  await a.stop();
  await admin.end();
});

test('a leader whose lock session stalls steps down', async (t) => {
  const url = await cluster.createDatabase('elector_timeout');
  const a = new PgAdvisoryElector({ url, identity: 'a', retryMs: 100, checkMs: 100, checkTimeoutMs: 500 });
  t.after(() => a.stop());
  await a.start();
  assert.equal(a.isLeader(), true);
  const pid = a.fence()!.pid;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  // Freeze the leader's session from the server side: a check is a query, and SIGSTOP-ing the
  // backend makes it hang the way a partitioned network would.
  const held = await admin.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = $1 AND granted", [pid]);
  assert.equal(held.rows[0].n, 1);
  process.kill(pid, 'SIGSTOP');
  try {
    await until('a steps down after a slow check', () => !a.isLeader(), 4000);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await a.stop();
  await admin.end();
});
