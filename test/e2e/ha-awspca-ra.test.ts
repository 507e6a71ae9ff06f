import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { LocalTokenIssuer } from '../../src/auth/index.js';
import { CaState } from '../../src/ca/state.js';
import { startPcaApi, type PcaApiHandle } from '../../src/server/pca/index.js';
import { openPgStore } from '../../src/store/postgres/index.js';
import { startPostgres, type PgCluster } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { IstioCaClient } from './serve/ca-client.js';
import { ID, spawnServe, workloadCsr, type ServeProcess } from './serve/helpers.js';

/**
 * RA mode on PostgreSQL: two replicas (one with two workers) forward every CSR to PCA, and PCA's
 * IssueCertificate quota is one budget for all of them. Under a load well above it, the calls PCA
 * sees stay within the budget in every one-second window, and the callers beyond it are refused at
 * once with RESOURCE_EXHAUSTED and a retry hint.
 */

const KEY = { id: 'AKIDMESHCAHARA001', secret: 'meshca-ha-ra-secret-0123456789' };
const CREDS = { AWS_ACCESS_KEY_ID: KEY.id, AWS_SECRET_ACCESS_KEY: KEY.secret, AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' };
const RATE = 5;
/** The bucket's burst for RATE (a fifth of a second's worth, at least one). */
const BURST = 1;
const LOAD_MS = 4000;
const LOOPS = 10;
const tmp = tempDir('meshca-ha-ra-');
let cluster: PgCluster;
let url: string;
let rootPem: string;
let api: PcaApiHandle;
const issueTimes: number[] = [];
const replicas: ServeProcess[] = [];

before(async () => {
  cluster = await startPostgres();
  url = await cluster.createDatabase('meshca_ha_ra');
  const state = new CaState(join(tmp.path, 'pca'));
  rootPem = state.initRoot({ alg: 'ec-p256', subject: { organization: ['corp'], commonName: 'RA PCA root' }, now: new Date() }).pem;
  api = await startPcaApi({
    state,
    addr: '127.0.0.1:0',
    accessKeys: [KEY],
    onCall: (r) => {
      if (r.operation === 'IssueCertificate' && !r.errorType) issueTimes.push(Date.now());
    },
  });
});

after(async () => {
  await Promise.all(replicas.filter((r) => r.child.exitCode === null && r.child.signalCode === null).map((r) => r.stop()));
  await api?.close();
  await cluster?.stop();
  tmp.cleanup();
});

function startReplica(n: number, workers: number): ServeProcess {
  const r = spawnServe(
    [
      ...['--dir', `${tmp.path}/replica-${n}`, '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--log-level', 'warn'],
      ...['--upstream', 'awspca', '--upstream-mode', 'ra', '--awspca-arn', api.cas()[0].arn, '--awspca-endpoint-url', api.url],
      ...['--awspca-issue-rate-limit', String(RATE), '--rate-limit', '0'],
      ...(workers > 0 ? ['--workers', String(workers)] : []),
    ],
    { ...CREDS, MESHCA_STORE_URL: url, MESHCA_AUDIT_DURABLE: 'true' },
  );
  replicas.push(r);
  return r;
}

test(
  'RA replicas share PCA IssueCertificate budget: PCA never sees more, callers beyond it get RESOURCE_EXHAUSTED',
  { timeout: 90_000 },
  async () => {
    const ready = [await startReplica(0, 2).ready, await startReplica(1, 0).ready];
    const store = await openPgStore(url);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const issuer = await LocalTokenIssuer.open(store);
      const ids = Array.from({ length: LOOPS }, (_, i) => ({ id: ID('ra', `w${i}`), sa: `w${i}` }));
      const tokens = await Promise.all(
        ids.map((x) => issuer.issue({ namespace: 'ra', serviceAccount: x.sa, ttlSeconds: 600, audience: ['istio-ca'] })),
      );
      const csrs = ids.map((x) => workloadCsr(x.id).csr);
      // One client per loop: the workers of replica 0 take different connections.
      const clients = ids.map((_, k) => IstioCaClient.tls(ready[k % 2].grpc, rootPem));
      // Let the bucket fill after the serving certificates' calls, then count from a clean start.
      await new Promise((r) => setTimeout(r, 1000));
      const t0 = Date.now();
      const before = issueTimes.length;
      const ok = [0, 0];
      const exhausted: string[] = [];
      const pushback: string[] = [];
      const other: string[] = [];
      const loop = async (k: number) => {
        while (Date.now() - t0 < LOAD_MS) {
          try {
            await clients[k].createCertificate({ csr: csrs[k] }, { token: tokens[k] });
            ok[k % 2]++;
          } catch (e) {
            const err = e as { code?: number; details?: string; message: string; metadata?: { get(k: string): unknown[] } };
            if (err.code === 8) {
              exhausted.push(err.details ?? err.message);
              pushback.push(String(err.metadata?.get('grpc-retry-pushback-ms')[0] ?? ''));
            } else other.push(`${err.code}: ${err.message}`);
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      };
      await Promise.all(ids.map((_, k) => loop(k)));
      const elapsed = Date.now() - t0;
      clients.forEach((c) => c.close());
      await Promise.all(replicas.map((r) => r.stop()));
      const times = issueTimes.slice(before);
      let worst = 0;
      for (const t of times) worst = Math.max(worst, times.filter((u) => u >= t && u < t + 1000).length);
      const issuedRows = Number(
        (await db.query("SELECT count(*)::int AS n FROM audit WHERE outcome = 'issued' AND identity LIKE '%/ns/ra/%'")).rows[0].n,
      );
      console.log(
        `# RA budget ${RATE}/s over ${elapsed} ms: PCA IssueCertificate ${times.length} (worst 1 s window ${worst}), certificates ${ok.join('+')}, ` +
          `RESOURCE_EXHAUSTED ${exhausted.length}, other errors ${other.length}, audited ${issuedRows}`,
      );
      assert.deepEqual(other, [], 'no failure but the budget refusals');
      assert.ok(ok[0] > 0 && ok[1] > 0, 'both replicas issued through PCA');
      assert.ok(exhausted.length > 0, 'the load went beyond the budget');
      assert.match(exhausted[0], /shared budget of 5 calls per second .* retry in \d+ ms/);
      assert.deepEqual([...new Set(pushback)], ['200'], 'each refusal carries the grpc-retry-pushback-ms trailer (1000 ms / 5)');
      assert.ok(worst <= RATE + BURST + 1, `PCA saw at most ${RATE + BURST} calls (+1) in any second (worst ${worst})`);
      assert.ok(times.length <= Math.ceil((RATE * elapsed) / 1000) + BURST + 1, `total within the budget (${times.length})`);
      assert.equal(times.length, ok[0] + ok[1], 'one PCA call per certificate handed out');
      assert.equal(issuedRows, ok[0] + ok[1], 'every certificate handed out is audited');
    } finally {
      await db.end();
      await store.close();
    }
  },
);
