import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { startPostgres, type PgCluster } from '../../test/helpers/postgres.js';
import { PgAdvisoryElector } from '../leader/pg-advisory.js';
import { openPgStore } from '../store/postgres/index.js';
import { MaterialFollower, runIntermediateRenewal, type MaterialLog } from './material-renewal.js';
import { bootstrapReplicated, rootFromRow, type MaterialDb, type MaterialOptions } from './material-store.js';

let cluster: PgCluster;
let n = 0;
before(async () => {
  cluster = await startPostgres();
});
after(async () => {
  await cluster?.stop();
});

const opts = (replica: string, passphrase?: string): MaterialOptions => ({
  cluster: 'default',
  trustDomain: 'cluster.local',
  keyAlgorithm: 'ec-p256',
  rootDays: 10,
  intermediateTtlSeconds: 3600,
  passphrase,
  replica,
});

/** A log that keeps what was said, to find the serial a renewal minted. */
function recorder(): MaterialLog & { lines: { msg: string; obj: Record<string, unknown> }[] } {
  const lines: { msg: string; obj: Record<string, unknown> }[] = [];
  const put = (obj: object, msg: string) => void lines.push({ msg, obj: obj as Record<string, unknown> });
  return { lines, info: put, warn: put, error: put };
}

async function until(what: string, f: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!(await f())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('replicas bootstrapping together make one root and one intermediate; keys are stored encrypted', async () => {
  const url = await cluster.createDatabase(`renewal_${++n}`);
  const stores = await Promise.all([1, 2, 3].map(() => openPgStore(url)));
  const boots = await Promise.all(stores.map((s, i) => bootstrapReplicated(s, opts(`r${i}`, 'pw'), () => new Date())));
  assert.equal(boots.filter((b) => b.createdRoot).length, 1);
  assert.equal(boots.filter((b) => b.createdIntermediate).length, 1);
  assert.equal(new Set(boots.map((b) => b.bundle.caCert.fingerprint256)).size, 1);
  const root = (await stores[0].latestMaterial('root', ''))!;
  assert.match(root.keyPem!, /ENCRYPTED PRIVATE KEY/);
  assert.throws(() => rootFromRow(root, 'wrong'), /passphrase/);
  await Promise.all(stores.map((s) => s.close()));
});

test('a leader that loses its lock between minting and committing commits nothing; the next leader renews once; followers switch', async () => {
  const url = await cluster.createDatabase(`renewal_${++n}`);
  const [sa, sb] = await Promise.all([openPgStore(url), openPgStore(url)]);
  let t = Date.now();
  const now = () => new Date(t);
  const boot = await bootstrapReplicated(sa, opts('a'), now);
  const switched: number[] = [];
  const follower = new MaterialFollower(
    { db: sb, cluster: 'default', log: recorder(), onNewer: (v) => switched.push(v.generation), pollMs: 10_000 },
    boot.generation,
  );
  await follower.start();

  const a = new PgAdvisoryElector({ url, identity: 'a', retryMs: 50, checkMs: 100, rejoinDelayMs: 60_000 });
  const b = new PgAdvisoryElector({ url, identity: 'b', retryMs: 50, checkMs: 100 });
  const logA = recorder();
  const logB = recorder();
  const committed: string[] = [];
  const runs: Promise<void>[] = [];
  t += 50 * 60_000; // two thirds of the hour are gone: renewal is due
  a.onStartedLeading((signal) =>
    runs.push(
      runIntermediateRenewal(
        {
          db: sa,
          options: opts('a'),
          now,
          fence: () => a.fence(),
          log: logA,
          onCommitted: () => committed.push('a'),
          pauseBeforeCommitMs: 500,
        },
        signal,
      ),
    ),
  );
  b.onStartedLeading((signal) =>
    runs.push(
      runIntermediateRenewal(
        { db: sb, options: opts('b'), now, fence: () => b.fence(), log: logB, onCommitted: () => committed.push('b') },
        signal,
      ),
    ),
  );
  await a.start();
  await b.start();
  assert.equal(a.isLeader(), true);

  // a has minted and waits to commit; its lock session dies under it.
  await until('a to mint', () => logA.lines.some((l) => l.msg.startsWith('minted')));
  const minted = String(logA.lines.find((l) => l.msg.startsWith('minted'))!.obj.serial);
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query('SELECT pg_terminate_backend($1)', [a.fence()!.pid]);
  await until('b to take over and commit', () => committed.includes('b'));
  await until('the follower to switch', () => switched.includes(2));

  const history = await sa.materialHistory('intermediate', 'default');
  assert.deepEqual(
    history.map((h) => [h.generation, h.createdBy]),
    [
      [1, 'a'],
      [2, 'b'],
    ],
  );
  assert.notEqual(history[1].serial, minted, "a's minted intermediate was never committed");
  assert.deepEqual(committed, ['b']);
  assert.ok(
    logA.lines.some((l) => /discarded unused/.test(l.msg)),
    'a says it discarded what it minted',
  );

  await Promise.all([a.stop(), b.stop()]);
  await Promise.all(runs);
  await follower.stop();
  await admin.end();
  await Promise.all([sa.close(), sb.close()]);
});

test('each failed renewal attempt is told to onFailed (the failure metric), and the loop retries until aborted', async () => {
  const ac = new AbortController();
  const failures: string[] = [];
  const db = {
    latestMaterial: () => Promise.reject(new Error('database down')),
  } as unknown as MaterialDb;
  const log = recorder();
  await runIntermediateRenewal(
    {
      db,
      options: opts('x'),
      now: () => new Date(),
      fence: () => undefined,
      log,
      onCommitted: () => assert.fail('nothing to commit'),
      onFailed: (e) => {
        failures.push((e as Error).message);
        if (failures.length === 2) ac.abort();
      },
    },
    ac.signal,
  );
  assert.deepEqual(failures, ['database down', 'database down'], 'one call per attempt, the retry included');
  assert.equal(log.lines.filter((l) => l.msg.startsWith('intermediate renewal failed')).length, 2);
});
