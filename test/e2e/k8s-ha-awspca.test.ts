import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CaState } from '../../src/ca/state.js';
import { startPcaApi, type PcaApiHandle } from '../../src/server/pca/index.js';
import { K8sDouble } from '../k8s-double/index.js';
import { opensslVerify } from '../helpers/openssl.js';
import { tempDir } from '../helpers/tmp.js';
import { renewalIssuedBy, replicaLoad, until } from './ha-load.js';
import { IstioCaClient } from './serve/ca-client.js';
import { ID, SERVE_WITH_SWITCHES, spawnServe, workloadCsr, type ServeProcess } from './serve/helpers.js';

/**
 * The Kubernetes shape of replicas with AWS PCA: three `meshca serve` replicas with the state
 * Secret and a Lease (the API double), no database. The Lease holder asks PCA for each
 * intermediate and commits it as the next generation in the Secret; it is SIGKILLed after PCA
 * answered a renewal and before the answer was recorded, and the next Lease holder finishes that
 * request with the stored idempotency token instead of asking for a second certificate.
 */

const KEY = { id: 'AKIDMESHCAK8SPCA1', secret: 'meshca-k8s-pca-secret-0123456789' };
const CREDS = { AWS_ACCESS_KEY_ID: KEY.id, AWS_SECRET_ACCESS_KEY: KEY.secret, AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' };
const LOOPS = 4;
const tmp = tempDir('meshca-k8s-ha-pca-');
let double: K8sDouble;
let api: PcaApiHandle;
let rootPem: string;
const replicas: ServeProcess[] = [];

before(async () => {
  double = await K8sDouble.start();
  for (let i = 0; i < LOOPS; i++)
    double.tokens.set(`k8s-token-w${i}`, { username: `system:serviceaccount:ha:w${i}`, audiences: ['istio-ca'] });
  const state = new CaState(join(tmp.path, 'pca'));
  rootPem = state.initRoot({ alg: 'ec-p256', subject: { organization: ['corp'], commonName: 'K8s PCA root' }, now: new Date() }).pem;
  api = await startPcaApi({ state, addr: '127.0.0.1:0', accessKeys: [KEY] });
});

after(async () => {
  await Promise.all(replicas.filter((r) => r.child.exitCode === null && r.child.signalCode === null).map((r) => r.stop()));
  await api?.close();
  await double?.close();
  tmp.cleanup();
});

function start(name: string): ServeProcess {
  double.users.set(`token-${name}`, name);
  const kc = double.writeKubeconfig(join(tmp.path, `kc-${name}`), `token-${name}`);
  const r = spawnServe(
    [
      ...['--dir', join(tmp.path, name), '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--log-level', 'info'],
      ...['--kubeconfig', kc, '--local-tokens', 'false', '--state-backend', 'secret', '--leader-election', '--pod-name', name],
      ...['--lease-duration', '2s', '--lease-renew-deadline', '1500ms', '--lease-retry-period', '200ms'],
      ...['--upstream', 'awspca', '--awspca-arn', api.cas()[0].arn, '--awspca-endpoint-url', api.url],
      ...['--intermediate-ttl', '30s', '--renew-before', '22s', '--rate-limit', '0'],
    ],
    { ...CREDS, MESHCA_KEY_PASSPHRASE: 'k8s-pca-passphrase', MESHCA_FAILPOINT_RENEWAL_PAUSE_MS: '2500' },
    SERVE_WITH_SWITCHES,
  );
  replicas.push(r);
  return r;
}

const secretData = () =>
  (double.store.get({ resource: 'secrets', namespace: 'meshca-system' }, 'meshca-state')?.data ?? {}) as Record<string, string>;
const decoded = (k: string) => JSON.parse(Buffer.from(secretData()[k], 'base64').toString('utf8')) as Record<string, unknown>;
const generations = () =>
  Object.keys(secretData())
    .filter((k) => k.startsWith('intermediate.default.'))
    .map((k) => Number(k.split('.').pop()))
    .sort((a, b) => a - b);

test(
  'three replicas with a state Secret and a Lease: the Lease holder renews from PCA, a killed one costs no second certificate',
  { timeout: 110_000 },
  async () => {
    const procs = ['r1', 'r2', 'r3'].map(start);
    const ready = await Promise.all(procs.map((p) => p.ready));
    try {
      assert.deepEqual(generations(), [1], 'one intermediate in the Secret after the first start');
      assert.equal(api.service.stats.issued, 1, 'obtained from PCA once');
      const clients = ready.map((r) => IstioCaClient.tls(r.grpc, rootPem));
      const load = replicaLoad(
        clients,
        Array.from({ length: LOOPS }, (_, i) => workloadCsr(ID('ha', `w${i}`)).csr),
        Array.from({ length: LOOPS }, (_, i) => `k8s-token-w${i}`),
        30,
      );
      const issued = await until('the Lease holder to get a renewed intermediate from PCA', () => renewalIssuedBy(procs), 40_000, 20);
      procs[issued.ix].child.kill('SIGKILL');
      await procs[issued.ix].exited;
      const survivorIx = [0, 1, 2].filter((i) => i !== issued.ix);
      await until(
        'the interrupted generation in the Secret',
        () => (generations().includes(issued.generation) ? true : undefined),
        45_000,
        100,
      );
      const atCommit = { generations: generations(), certificates: api.service.stats.issued, replays: api.service.stats.idempotentReplays };
      const newest = String(decoded(`intermediate.default.${issued.generation}`).serial)
        .toLowerCase()
        .replace(/^0+/, '');
      await until(
        'every survivor to serve with it',
        () => (survivorIx.every((ix) => load.received.some((x) => x.replica === ix && x.intermediate === newest)) ? true : undefined),
        20_000,
        100,
      );
      await load.stop();
      clients.forEach((c) => c.close());

      console.log(
        `# k8s HA awspca: ${load.received.length} certificates, ${load.failed} failed after retries, failed attempts ${[...load.errors].map(([k, v]) => `${k}: ${v}`).join(', ') || 'none'}; ` +
          `generations ${atCommit.generations.join(',')} (generation ${issued.generation} interrupted), PCA certificates ${atCommit.certificates}, idempotent replays ${atCommit.replays}`,
      );
      assert.equal(load.failed, 0, 'no request failed after client retries');
      assert.deepEqual(
        [...load.errors].filter(([k]) => !k.startsWith(`replica ${issued.ix} `)),
        [],
        'the survivors refused nothing',
      );
      assert.deepEqual(
        atCommit.generations,
        Array.from({ length: issued.generation }, (_, i) => i + 1),
        'one generation per renewal',
      );
      assert.equal(
        atCommit.certificates,
        issued.generation,
        'PCA issued one certificate per generation: none extra for the interrupted one',
      );
      assert.ok(atCommit.replays >= 1, 'the next Lease holder repeated the request with the stored token');
      assert.equal(
        decoded(`pending.default.${issued.generation}`).certificateRef,
        issued.arn,
        'the ARN the killed replica got was recorded by its successor',
      );
      for (const k of Object.keys(secretData()).filter((x) => /^(intermediate|pending)\./.test(x))) {
        assert.match(String(decoded(k).keyPem), /^-----BEGIN ENCRYPTED PRIVATE KEY-----/, `${k}: the key is encrypted`);
      }
      const rootFile = join(tmp.path, 'root.pem');
      writeFileSync(rootFile, rootPem);
      const x = load.received.find((y) => y.intermediate === newest)!;
      writeFileSync(join(tmp.path, 'leaf.pem'), x.chain[0]);
      writeFileSync(join(tmp.path, 'chain.pem'), x.chain.slice(1).join(''));
      const v = opensslVerify(rootFile, join(tmp.path, 'leaf.pem'), join(tmp.path, 'chain.pem'), ['-no_check_time']);
      assert.equal(v.code, 0, v.stderr);
    } catch (e) {
      for (const [i, p] of procs.entries()) console.log(`# replica ${i} log tail:\n${p.stderr().slice(-3000)}`);
      throw e;
    }
  },
);
