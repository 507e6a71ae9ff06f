import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { LocalTokenIssuer } from '../../src/auth/index.js';
import { CaState } from '../../src/ca/state.js';
import { startPcaApi, type PcaApiHandle, type PcaCallRecord } from '../../src/server/pca/index.js';
import { openPgStore } from '../../src/store/postgres/index.js';
import { opensslVerify } from '../helpers/openssl.js';
import { startPostgres, type PgCluster } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { renewalIssuedBy, replicaLoad, serialOf, until } from './ha-load.js';
import { IstioCaClient } from './serve/ca-client.js';
import { ID, SERVE_WITH_SWITCHES, getJson, spawnServe, workloadCsr, type ServeProcess } from './serve/helpers.js';

/**
 * Three `meshca serve` replicas on one PostgreSQL with `upstream: awspca` (the PCA-compatible API
 * as AWS): only the leader asks PCA for each renewed intermediate (30 s, renewed 22 s before
 * expiry), every replica switches to it, and the leader is SIGKILLed after PCA issued a renewal
 * but before the certificate's ARN was recorded (a failpoint holds it there). The next leader
 * repeats the request with the stored idempotency token, PCA answers with the same certificate,
 * and exactly that certificate is committed: no second PCA certificate, no second commit.
 */

const KEY = { id: 'AKIDMESHCAHAPCA01', secret: 'meshca-ha-pca-secret-0123456789' };
const CREDS = { AWS_ACCESS_KEY_ID: KEY.id, AWS_SECRET_ACCESS_KEY: KEY.secret, AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' };
const PASSPHRASE = 'ha-awspca-passphrase';
const PAUSE_MS = 2500;
const LOOPS = 4;
const tmp = tempDir('meshca-ha-awspca-');
let cluster: PgCluster;
let url: string;
let state: CaState;
let rootPem: string;
let api: PcaApiHandle;
const calls: PcaCallRecord[] = [];
const replicas: ServeProcess[] = [];

before(async () => {
  cluster = await startPostgres();
  url = await cluster.createDatabase('meshca_ha_pca');
  state = new CaState(join(tmp.path, 'pca'));
  rootPem = state.initRoot({ alg: 'ec-p256', subject: { organization: ['corp'], commonName: 'HA PCA root' }, now: new Date() }).pem;
  // PCA throttles the first two IssueCertificate calls, as it does when the account's quota is spent.
  api = await startPcaApi({
    state,
    addr: '127.0.0.1:0',
    accessKeys: [KEY],
    injectThrottle: 2,
    onCall: (r) => calls.push(r),
  });
});

after(async () => {
  await Promise.all(replicas.filter((r) => r.child.exitCode === null && r.child.signalCode === null).map((r) => r.stop()));
  await api?.close();
  await cluster?.stop();
  tmp.cleanup();
});

function startReplica(n: number): ServeProcess {
  const r = spawnServe(
    [
      ...['--dir', `${tmp.path}/replica-${n}`, '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0'],
      ...['--upstream', 'awspca', '--awspca-arn', api.cas()[0].arn, '--awspca-endpoint-url', api.url],
      ...['--intermediate-ttl', '30s', '--renew-before', '22s', '--rate-limit', '0', '--log-level', 'info'],
    ],
    {
      ...CREDS,
      MESHCA_STORE_URL: url,
      MESHCA_AUDIT_DURABLE: 'true',
      MESHCA_KEY_PASSPHRASE: PASSPHRASE,
      MESHCA_FAILPOINT_RENEWAL_PAUSE_MS: String(PAUSE_MS),
    },
    // The failpoint is read by the test entry only, never by bin/meshca.js.
    SERVE_WITH_SWITCHES,
  );
  replicas.push(r);
  return r;
}

interface Dash {
  replica: { leader: boolean };
  hierarchy: { roots: { intermediates: { signing: boolean; generation?: number }[] }[] };
}
const dashboard = async (http: string) => (await getJson<Dash>(http, '/v1/dashboard')).body;
const signingGeneration = (d: Dash) => d.hierarchy.roots.flatMap((r) => r.intermediates).find((i) => i.signing)?.generation;

test(
  'three replicas with awspca: the leader renews from PCA, all switch, a leader killed mid-renewal costs no second certificate',
  { timeout: 110_000 },
  async () => {
    const procs = [0, 1, 2].map(startReplica);
    const ready = await Promise.all(procs.map((p) => p.ready));
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const store = await openPgStore(url);
    const maxGeneration = async () =>
      Number(
        (await db.query("SELECT max(generation)::int AS g FROM ca_material WHERE kind = 'intermediate' AND cluster = 'default'")).rows[0].g,
      );
    try {
      assert.equal((await db.query("SELECT count(*)::int AS n FROM ca_material WHERE kind = 'root'")).rows[0].n, 0, 'no root of our own');
      const issuer = await LocalTokenIssuer.open(store, { passphrase: PASSPHRASE });
      const trust = (await getJson<{ roots: string[] }>(ready[0].http, '/v1/trust-bundle')).body.roots;
      assert.deepEqual(trust.map(serialOf), [serialOf(rootPem)], 'replicas trust the PCA root');
      const ids = Array.from({ length: LOOPS }, (_, i) => ({ id: ID('ha', `p${i}`), sa: `p${i}` }));
      const tokens = await Promise.all(
        ids.map((x) => issuer.issue({ namespace: 'ha', serviceAccount: x.sa, ttlSeconds: 600, audience: ['istio-ca'] })),
      );
      const csrs = ids.map((x) => workloadCsr(x.id).csr);
      const clients = ready.map((r) => IstioCaClient.tls(r.grpc, rootPem));
      const load = replicaLoad(clients, csrs, tokens, 30);
      const received = load.received;
      const errors = load.errors;

      // The leader of a renewal (generation 2 or later), held by the failpoint after PCA answered.
      const issued = await until('the leader to get a renewed intermediate from PCA', () => renewalIssuedBy(procs), 40_000, 20);
      const victim = procs[issued.ix];
      victim.child.kill('SIGKILL');
      await victim.exited;
      const survivors = procs.filter((p) => p !== victim);
      const survivorIx = survivors.map((p) => procs.indexOf(p));

      // A survivor finishes that renewal. Counted the moment it is committed: the next renewal is seconds away.
      await until(
        'the interrupted generation to be committed',
        async () => ((await maxGeneration()) >= issued.generation ? true : undefined),
        45_000,
        100,
      );
      const committedAt = { generations: await maxGeneration(), certificates: api.service.stats.issued };
      const issueCalls = calls.filter((c) => c.operation === 'IssueCertificate' && !c.errorType);
      const newest = (
        await db.query("SELECT serial FROM ca_material WHERE kind = 'intermediate' AND cluster = 'default' AND generation = $1", [
          issued.generation,
        ])
      ).rows[0] as { serial: string };
      const newestSerial = newest.serial.toLowerCase().replace(/^0+/, '');
      // Every survivor switches to it and keeps answering.
      await until(
        'every survivor to sign with the interrupted generation',
        async () => {
          const d = await Promise.all(survivorIx.map((ix) => dashboard(ready[ix].http).catch(() => undefined)));
          const switched = d.every((x) => x && (signingGeneration(x) ?? 0) >= issued.generation);
          const served = survivorIx.every((ix) => received.some((x) => x.replica === ix && x.intermediate === newestSerial));
          return switched && served ? true : undefined;
        },
        20_000,
        100,
      );
      await load.stop();
      clients.forEach((c) => c.close());
      await Promise.all(survivors.map((p) => p.stop()));

      const resumed = survivors.filter((p) => p.stderr().includes('resuming an intermediate request another replica left unfinished'));
      const history = (
        await db.query(
          "SELECT generation, serial, key_pem, created_by FROM ca_material WHERE kind = 'intermediate' AND cluster = 'default' ORDER BY generation",
        )
      ).rows as { generation: number; serial: string; key_pem: string }[];
      const pending = (
        await db.query("SELECT generation, certificate_ref, key_pem FROM upstream_renewals WHERE cluster = 'default' ORDER BY generation")
      ).rows as { generation: number; certificate_ref: string | null; key_pem: string }[];
      const committedSerials = new Set(history.map((h) => h.serial.toLowerCase().replace(/^0+/, '')));
      const audited = new Set(
        (await db.query("SELECT serial FROM audit WHERE outcome = 'issued'")).rows.map((r) =>
          String(r.serial).toLowerCase().replace(/^0+/, ''),
        ),
      );
      const lost = received.filter((x) => !audited.has(x.serial));
      console.log(
        `# HA awspca: ${received.length} certificates, ${load.failed} failed after retries, failed attempts ${[...errors].map(([k, v]) => `${k}: ${v}`).join(', ') || 'none'}; ` +
          `generations ${history.map((h) => h.generation).join(',')} (generation ${issued.generation} interrupted); when it was committed: PCA IssueCertificate answers ${issueCalls.length}, ` +
          `PCA certificates ${committedAt.certificates} for ${committedAt.generations} generations, idempotent replays ${api.service.stats.idempotentReplays}; audit rows lost ${lost.length}`,
      );

      // The bootstrap met the injected throttling and retried with one token until PCA issued.
      const first = calls.filter((c) => c.operation === 'IssueCertificate').slice(0, 3);
      assert.deepEqual(
        first.map((c) => c.errorType ?? 'ok'),
        ['ThrottlingException', 'ThrottlingException', 'ok'],
      );
      assert.equal(new Set(first.map((c) => c.idempotencyToken)).size, 1, 'the throttled calls were retried with the same token');
      assert.equal(load.failed, 0, 'no request failed after client retries');
      assert.deepEqual(
        [...errors].filter(([k]) => !k.startsWith(`replica ${issued.ix} `)),
        [],
        'the surviving replicas refused nothing',
      );
      assert.deepEqual(lost, [], 'every certificate a client received has its audit row (durable audit)');
      assert.deepEqual(
        history.map((h) => h.generation),
        history.map((_, i) => i + 1),
        'one commit per generation',
      );
      assert.equal(committedSerials.size, history.length, 'each generation is a distinct certificate');
      assert.equal(resumed.length, 1, 'one survivor resumed the interrupted request');
      // The interrupted generation is the very certificate PCA issued to the killed leader.
      const interrupted = pending.find((p) => p.generation === issued.generation);
      assert.equal(interrupted?.certificate_ref, issued.arn, 'the ARN the killed leader got was recorded by its successor');
      assert.ok(api.service.stats.idempotentReplays >= 1, 'the successor repeated the request with the stored token');
      assert.equal(committedAt.generations, issued.generation, 'the interrupted generation was committed once');
      assert.equal(
        committedAt.certificates,
        committedAt.generations,
        'PCA issued exactly one certificate per generation: none extra for the interrupted renewal',
      );
      assert.equal(
        new Set(issueCalls.map((c) => c.certificateArn)).size,
        committedAt.generations,
        '... and answered the repeat with the same ARN',
      );
      assert.ok(history.length >= issued.generation);
      for (const r of [...history, ...pending])
        assert.match(r.key_pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----/, 'keys in the database are encrypted');
      // Clients saw only committed intermediates, each replica several of them, and chains verify with openssl to the PCA root.
      for (const x of received)
        assert.ok(committedSerials.has(x.intermediate), `clients saw only committed intermediates (${x.intermediate})`);
      for (const ix of survivorIx) {
        const seen = new Set(received.filter((x) => x.replica === ix).map((x) => x.intermediate));
        assert.ok(seen.size >= 2, `replica ${ix} switched intermediates while serving (${seen.size})`);
      }
      const rootFile = join(tmp.path, 'pca-root.pem');
      writeFileSync(rootFile, rootPem);
      for (const g of new Set(received.map((x) => x.intermediate))) {
        const x = received.find((y) => y.intermediate === g)!;
        writeFileSync(join(tmp.path, 'leaf.pem'), x.chain[0]);
        writeFileSync(join(tmp.path, 'untrusted.pem'), x.chain.slice(1).join(''));
        const v = opensslVerify(rootFile, join(tmp.path, 'leaf.pem'), join(tmp.path, 'untrusted.pem'), ['-no_check_time']);
        assert.equal(v.code, 0, `openssl verifies a leaf of intermediate ${g}: ${v.stderr}`);
      }
    } catch (e) {
      // The replicas' logs tell which step stalled.
      for (const [i, p] of procs.entries()) console.log(`# replica ${i} log tail:\n${p.stderr().slice(-4000)}`);
      throw e;
    } finally {
      await store.close();
      await db.end();
    }
  },
);
