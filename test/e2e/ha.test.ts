import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { LocalTokenIssuer } from '../../src/auth/index.js';
import { openPgStore } from '../../src/store/postgres/index.js';
import { startPostgres, type PgCluster } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { replicaLoad, until } from './ha-load.js';
import { IstioCaClient } from './serve/ca-client.js';
import { ID, SERVE_WITH_SWITCHES, getJson, spawnServe, workloadCsr, type ServeProcess } from './serve/helpers.js';

/**
 * High availability, as a fault test: three `meshca serve` processes on one PostgreSQL, a steady
 * load of clients that retry against all three, and the leader killed with SIGKILL in the middle
 * of an intermediate renewal (a 15 s intermediate renews every 10 s; a failpoint holds each
 * renewal 1.5 s between minting and committing, and the kill lands inside that window). Asserted:
 * no request fails after client retries, every certificate a client received has its audit row,
 * every renewal committed exactly one CA certificate (the half-done one of the killed leader is
 * never committed nor seen by anyone), and a follower leads within a few seconds.
 */

const TTL = 15;
const PAUSE_MS = 1500;
const LOOPS = 6;
const tmp = tempDir('meshca-ha-');
let cluster: PgCluster;
let url: string;
const replicas: ServeProcess[] = [];

before(async () => {
  cluster = await startPostgres();
  url = await cluster.createDatabase('meshca_ha');
});

after(async () => {
  await Promise.all(replicas.filter((r) => r.child.exitCode === null && r.child.signalCode === null).map((r) => r.stop()));
  await cluster?.stop();
  tmp.cleanup();
});

interface Ready {
  grpc: string;
  http: string;
  rootFingerprint: string;
}

function startReplica(n: number): ServeProcess {
  const r = spawnServe(
    [
      '--dir',
      `${tmp.path}/replica-${n}`,
      '--grpc-addr',
      '127.0.0.1:0',
      '--http-addr',
      '127.0.0.1:0',
      '--intermediate-ttl',
      `${TTL}s`,
      '--rate-limit',
      '0',
      '--log-level',
      'info',
    ],
    // The URL through the environment, as an operator would pass a secret. MESHCA_AUDIT_DURABLE=false
    // in the test's environment shows the window durable audit closes (the lost-row check then fails).
    {
      MESHCA_STORE_URL: url,
      MESHCA_AUDIT_DURABLE: process.env.MESHCA_AUDIT_DURABLE ?? 'true',
      MESHCA_FAILPOINT_RENEWAL_PAUSE_MS: String(PAUSE_MS),
    },
    // The failpoint is read by the test entry only, never by bin/meshca.js.
    SERVE_WITH_SWITCHES,
  );
  replicas.push(r);
  return r;
}

async function isLeader(r: Ready): Promise<boolean> {
  try {
    const { body } = await getJson<{ replica: { leader: boolean } }>(r.http, '/v1/dashboard');
    return body.replica.leader;
  } catch {
    return false;
  }
}

test(
  'three replicas, leader SIGKILLed mid-renewal: no failed request, no lost audit row, one CA certificate per renewal, fast takeover',
  { timeout: 110_000 },
  async () => {
    const procs = [0, 1, 2].map(startReplica);
    const ready = (await Promise.all(procs.map((p) => p.ready))) as Ready[];
    assert.equal(new Set(ready.map((r) => r.rootFingerprint)).size, 1, 'replicas started together share one root');

    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const store = await openPgStore(url);
    try {
      assert.equal(
        (await db.query("SELECT count(*)::int AS n FROM ca_material WHERE kind = 'root'")).rows[0].n,
        1,
        'exactly one root in the database',
      );
      const leaders = await until(
        'one leader',
        async () => {
          const l = (await Promise.all(ready.map(isLeader))).map((v, i) => (v ? i : -1)).filter((i) => i >= 0);
          return l.length === 1 ? l : undefined;
        },
        10_000,
      );
      const leaderIx = leaders[0];

      // Clients: tokens from the shared issuer key in the database, the root from any replica.
      const issuer = await LocalTokenIssuer.open(store);
      const rootPem = (await getJson<{ roots: string[] }>(ready[0].http, '/v1/trust-bundle')).body.roots[0];
      const ids = Array.from({ length: LOOPS }, (_, i) => ({ id: ID('ha', `w${i}`), sa: `w${i}` }));
      const tokens = await Promise.all(
        ids.map((x) => issuer.issue({ namespace: 'ha', serviceAccount: x.sa, ttlSeconds: 600, audience: ['istio-ca'] })),
      );
      const csrs = ids.map((x) => workloadCsr(x.id).csr);
      const clients = ready.map((r) => IstioCaClient.tls(r.grpc, rootPem));

      const load = replicaLoad(clients, csrs, tokens);
      const received = load.received;
      const errors = load.errors;

      // Kill the leader once its renewal is minted but not committed (held there by the failpoint).
      const victim = procs[leaderIx];
      const minted = await until(
        'the leader to mint a renewal',
        () => victim.stderr().match(/"generation":(\d+),"serial":"([0-9a-f]+)","msg":"minted an intermediate; committing"/) ?? undefined,
        30_000,
        20,
      );
      const interruptedGeneration = Number(minted[1]);
      const discardedSerial = minted[2];
      const servedBeforeKill = received.length;
      victim.child.kill('SIGKILL');
      const killedAt = Date.now();
      await victim.exited;
      const survivors = ready.filter((_, i) => i !== leaderIx);
      await until(
        'a follower to lead',
        async () => ((await Promise.all(survivors.map(isLeader))).some(Boolean) ? true : undefined),
        15_000,
        25,
      );
      const failoverMs = Date.now() - killedAt;

      // Keep the load on until the new leader has committed the interrupted generation and one more renewal.
      await until(
        'two more renewals after the takeover',
        async () => {
          const r = await db.query("SELECT max(generation)::int AS g FROM ca_material WHERE kind = 'intermediate' AND cluster = 'default'");
          return r.rows[0].g >= interruptedGeneration + 1 ? true : undefined;
        },
        40_000,
        200,
      );
      await new Promise((r) => setTimeout(r, 1500));
      // The new leader's dashboard tells the story: it leads, a second term began, it signs with the newest generation.
      const newLeader = (await Promise.all(survivors.map(async (r) => ((await isLeader(r)) ? r : undefined)))).find(Boolean)!;
      const dash = (
        await getJson<{
          replica: { leader: boolean; store: string };
          leaderTerms: unknown[];
          hierarchy: { roots: { intermediates: { signing: boolean; generation: number }[] }[] };
          upstreams: { kind: string; status: string }[];
        }>(newLeader.http, '/v1/dashboard')
      ).body;
      await load.stop();
      clients.forEach((c) => c.close());
      // Survivors stop cleanly (SIGTERM flushes whatever is queued).
      await Promise.all(procs.filter((p) => p !== victim).map((p) => p.stop()));

      // Audit: every certificate a client holds has its row.
      const audited = new Set(
        (await db.query("SELECT serial FROM audit WHERE outcome = 'issued'")).rows.map((r) =>
          String(r.serial).toLowerCase().replace(/^0+/, ''),
        ),
      );
      const lost = received.filter((x) => !audited.has(x.serial));
      const fromVictim = received.filter((x) => x.replica === leaderIx).length;

      // CA certificates: one row per generation, contiguous, distinct; clients only ever saw those.
      const history = (
        await db.query(
          "SELECT generation, serial, created_by FROM ca_material WHERE kind = 'intermediate' AND cluster = 'default' ORDER BY generation",
        )
      ).rows as { generation: number; serial: string; created_by: string }[];
      const committedSerials = new Set(history.map((h) => h.serial.toLowerCase().replace(/^0+/, '')));
      const seenIntermediates = new Set(received.map((x) => x.intermediate));
      const commitsLogged = procs.flatMap((p) =>
        [
          ...p.stderr().matchAll(/"generation":(\d+),"serial":"[0-9a-f]+","notAfter":"[^"]+","msg":"committed the renewed intermediate"/g),
        ].map((m) => Number(m[1])),
      );
      const terms = (await db.query('SELECT term, holder, acquired_at FROM leader_terms ORDER BY term')).rows;

      console.log(
        `# HA figures: ${received.length} certificates issued (${servedBeforeKill} before the kill, ${fromVictim} by the killed leader), ` +
          `${load.retried} requests needed a retry (failed attempts: ${[...errors].map(([k, v]) => `${k}: ${v}`).join(', ') || 'none'}; gRPC 14 = UNAVAILABLE), ${load.failed} failed after retries; audit rows lost: ${lost.length}; ` +
          `failover ${failoverMs} ms (SIGKILL to a follower leading); intermediate generations ${history.map((h) => h.generation).join(',')} ` +
          `(generation ${interruptedGeneration} interrupted mid-renewal: its minted serial ${discardedSerial} discarded), leader terms ${terms.length}`,
      );

      assert.equal(load.failed, 0, 'no request failed after client retries');
      assert.deepEqual(lost, [], 'every certificate a client received has its audit row');
      assert.ok(fromVictim > 0, 'the killed leader had been serving');
      assert.ok(failoverMs < 5000, `a follower led within 5 s (took ${failoverMs} ms)`);
      assert.deepEqual(
        history.map((h) => h.generation),
        history.map((_, i) => i + 1),
        'generations are contiguous: one commit per renewal',
      );
      assert.equal(committedSerials.size, history.length, 'each generation is a distinct certificate');
      assert.ok(history.length >= interruptedGeneration + 1, `renewals continued after the takeover (${history.length} generations)`);
      assert.ok(
        !committedSerials.has(discardedSerial.replace(/^0+/, '')),
        'the half-done renewal of the killed leader was never committed',
      );
      assert.ok(!seenIntermediates.has(discardedSerial.replace(/^0+/, '')), '... nor used to sign anything');
      for (const s of seenIntermediates) assert.ok(committedSerials.has(s), `clients saw only committed intermediates (${s})`);
      assert.deepEqual(
        [...commitsLogged].sort((a, b) => a - b),
        history.slice(1).map((h) => h.generation),
        'each renewal was committed exactly once, by one replica',
      );
      assert.ok(terms.length >= 2, 'a second leader term began');
      assert.equal(dash.replica.leader, true);
      assert.equal(dash.replica.store, 'postgres');
      assert.ok(dash.leaderTerms.length >= 2);
      assert.equal(dash.hierarchy.roots[0].intermediates.find((i) => i.signing)?.generation, history[history.length - 1].generation);
      assert.equal(dash.upstreams.find((u) => u.kind === 'database')?.status, 'ok');
      const survivorErrors = [...errors].filter(([k]) => !k.startsWith(`replica ${leaderIx} `));
      assert.deepEqual(survivorErrors, [], 'the surviving replicas refused nothing: every failed attempt was at the killed one');
    } finally {
      await store.close();
      await db.end();
    }
  },
);
