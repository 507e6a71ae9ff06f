import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CaState } from '../../src/ca/state.js';
import { parseCertificates } from '../../src/pki/certificate.js';
import { startPcaApi, type PcaApiHandle } from '../../src/server/pca/index.js';
import { K8sDouble } from '../k8s-double/index.js';
import { opensslVerify } from '../helpers/openssl.js';
import { runMeshca } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from './ha-load.js';
import { getJson, spawnServe, type ServeProcess } from './serve/helpers.js';

/**
 * The production shape of the public guides on the API doubles: a management cluster (state
 * Secret + Lease) running two `meshca serve` replicas with `--manifests DIR`, AWS PCA (`meshca
 * pca-api`) at the top, and workload clusters that each get their own intermediate in
 * istio-system/cacerts. The leader is SIGKILLed: the other replica takes over with the bundles
 * in the state Secret (nothing re-issued, nothing re-delivered), then applies a change of the
 * manifests directory.
 */

const KEY = { id: 'AKIDMESHCAPRODSHAPE', secret: 'meshca-prod-shape-secret-0123456789' };
const CREDS = { AWS_ACCESS_KEY_ID: KEY.id, AWS_SECRET_ACCESS_KEY: KEY.secret, AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' };
const CLUSTERS = ['east', 'west', 'central', 'north'] as const;
type Name = (typeof CLUSTERS)[number];
const tmp = tempDir('meshca-prod-shape-');
const manifests = join(tmp.path, 'manifests');
let mgmt: K8sDouble;
const workload = {} as Record<Name, K8sDouble>;
const kubeconfigs = {} as Record<Name, string>;
let api: PcaApiHandle;
let pcaRootPem: string;
const replicas: ServeProcess[] = [];
type ClusterStatus = { delivery?: { digest?: string } };

before(async () => {
  mgmt = await K8sDouble.start();
  for (const c of CLUSTERS) {
    workload[c] = await K8sDouble.start();
    kubeconfigs[c] = workload[c].writeKubeconfig(join(tmp.path, `${c}.kubeconfig`), `${c}-bearer-token-0123`);
  }
  const state = new CaState(join(tmp.path, 'pca'));
  pcaRootPem = state.initRoot({ alg: 'rsa-2048', subject: { organization: ['corp'], commonName: 'PCA root' }, now: new Date() }).pem;
  api = await startPcaApi({ state, addr: '127.0.0.1:0', accessKeys: [KEY] });
});

after(async () => {
  await Promise.all(replicas.filter((r) => r.child.exitCode === null && r.child.signalCode === null).map((r) => r.stop()));
  await api?.close();
  await Promise.all([mgmt, ...Object.values(workload)].map((d) => d?.close()));
  tmp.cleanup();
});

/** getistio's gen-ca against PCA, with a template that lets the intermediate sign one level below it. */
async function pcaIntermediate(): Promise<string> {
  const config = join(tmp.path, 'aws-acm-config.yaml');
  writeFileSync(
    config,
    `providerName: aws
providerConfig:
  aws:
    signingCAArn: "${api.cas()[0].arn}"
    templateArn: "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen1/V1"
    signingAlgorithm: SHA256WITHRSA
certificateParameters:
  secretOptions: {istioCANamespace: istio-system}
  caOptions:
    validityDays: 365
    keyLength: 2048
    certSigningRequestParams:
      subject: {commonname: "meshca production intermediate", organization: ["corp"]}
`,
  );
  const out = join(tmp.path, 'pca-intermediate');
  const r = await runMeshca(['gen-ca', '--config-file', config, '--out', out, '--awspca-endpoint-url', api.url], { env: CREDS });
  assert.equal(r.code, 0, r.stderr);
  return out;
}

const b64 = (f: string) => readFileSync(f).toString('base64');
const clusterYaml = (c: Name) =>
  `apiVersion: meshca.io/v1alpha1\nkind: Cluster\nmetadata: {name: ${c}}\nspec:\n  kubeconfig: {file: ${kubeconfigs[c]}}\n`;

function writeManifests(pca: string): void {
  mkdirSync(manifests, { recursive: true });
  const files = ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem'];
  writeFileSync(
    join(manifests, 'pca-intermediate.yaml'),
    `apiVersion: v1\nkind: Secret\nmetadata: {name: pca-intermediate, namespace: gloo-mesh}\ndata:\n${files.map((f) => `  ${f}: ${b64(join(pca, f))}\n`).join('')}`,
  );
  writeFileSync(
    join(manifests, 'policy.yaml'),
    `apiVersion: admin.gloo.solo.io/v2
kind: RootTrustPolicy
metadata: {name: root-trust-policy, namespace: gloo-mesh}
spec:
  config:
    mgmtServerCa:
      secretRef: {name: pca-intermediate, namespace: gloo-mesh}
    intermediateCertOptions: {ttlDays: 30, rsaKeySizeBytes: 2048}
`,
  );
  writeFileSync(join(manifests, 'clusters.yaml'), (['east', 'west', 'central'] as const).map(clusterYaml).join('---\n'));
}

function start(name: string): ServeProcess {
  mgmt.users.set(`token-${name}`, name);
  const kc = mgmt.writeKubeconfig(join(tmp.path, `mgmt-${name}`), `token-${name}`);
  const r = spawnServe(
    [
      ...['--dir', join(tmp.path, name), '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--log-level', 'info'],
      ...['--kubeconfig', kc, '--state-backend', 'secret', '--leader-election', '--pod-name', name],
      ...['--lease-duration', '2s', '--lease-renew-deadline', '1500ms', '--lease-retry-period', '200ms'],
      ...['--upstream', 'awspca', '--awspca-arn', api.cas()[0].arn, '--awspca-endpoint-url', api.url],
      ...['--manifests', manifests],
    ],
    CREDS,
  );
  replicas.push(r);
  return r;
}

const SECRETS = { resource: 'secrets', namespace: 'istio-system' };
const remote = (c: Name) => workload[c].store.get(SECRETS, 'cacerts');
const remoteFiles = (c: Name) =>
  Object.fromEntries(Object.entries(remote(c)!.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
const delivered = (c: Name) => {
  const s = remote(c)!;
  return { digest: (s.metadata.annotations as Record<string, string>)['meshca.io/bundle-digest'], version: s.metadata.resourceVersion };
};
const stateData = () =>
  (mgmt.store.get({ resource: 'secrets', namespace: 'meshca-system' }, 'meshca-state')?.data ?? {}) as Record<string, string>;
const holder = () =>
  (mgmt.store.get({ resource: 'leases', namespace: 'meshca-system' }, 'meshca-leader')?.spec as { holderIdentity?: string } | undefined)
    ?.holderIdentity;

/** The delivered bundle chains cluster intermediate -> PCA intermediate -> PCA root, checked by openssl. */
function checkChain(c: Name, pcaIntermediatePem: string): string {
  const d = remoteFiles(c);
  const out = join(tmp.path, `check-${c}`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const k of ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem']) writeFileSync(join(out, k), d[k]);
  writeFileSync(join(out, 'pca-root.pem'), pcaRootPem);
  const v = opensslVerify(join(out, 'pca-root.pem'), join(out, 'ca-cert.pem'), join(out, 'cert-chain.pem'));
  assert.equal(v.code, 0, `${c}: ${v.stdout}${v.stderr}`);
  const chain = parseCertificates(d['cert-chain.pem']);
  const pcaInt = parseCertificates(pcaIntermediatePem)[0];
  const root = parseCertificates(pcaRootPem)[0];
  assert.deepEqual(
    chain.map((x) => x.fingerprint256),
    [new X509Certificate(d['ca-cert.pem']).fingerprint256, pcaInt.fingerprint256, root.fingerprint256],
    `${c}: cluster intermediate, PCA intermediate, PCA root`,
  );
  assert.equal(parseCertificates(d['root-cert.pem'])[0].fingerprint256, root.fingerprint256, `${c}: root-cert.pem is the PCA root`);
  return out;
}

test(
  'two replicas with --manifests, AWS PCA and three clusters: each cluster its intermediate, a failover re-issues nothing',
  { timeout: 120_000 },
  async () => {
    const pca = await pcaIntermediate();
    const pcaIntermediatePem = readFileSync(join(pca, 'ca-cert.pem'), 'utf8');
    writeManifests(pca);
    const procs = ['r1', 'r2'].map(start);
    try {
      const ready = await Promise.all(procs.map((p) => p.ready));
      const first = ['east', 'west', 'central'] as const;
      await until('istio-system/cacerts in the three clusters', () => (first.every((c) => remote(c)) ? true : undefined), 60_000, 100);
      const dirs = first.map((c) => checkChain(c, pcaIntermediatePem));
      const serials = new Set(first.map((c) => new X509Certificate(remoteFiles(c)['ca-cert.pem']).serialNumber));
      assert.equal(serials.size, 3, 'a different intermediate for each cluster');
      const cmp = await runMeshca(['compare-roots', ...dirs]);
      assert.equal(cmp.code, 0, cmp.stdout + cmp.stderr);
      for (const c of first) {
        const key = (f: string) => Buffer.from(stateData()[`cluster.${c}.${f}`] ?? '', 'base64').toString();
        assert.equal(key('ca-cert.pem'), remoteFiles(c)['ca-cert.pem'], `${c}: the bundle is in the shared state Secret`);
        assert.equal(key('ca-key.pem'), remoteFiles(c)['ca-key.pem'], `${c}: its key too`);
      }
      for (const r of ready) {
        const rz = await getJson<{ manifests?: { objects: number; problems: unknown[] } }>(r.http, '/readyz');
        assert.equal(rz.status, 200);
        assert.deepEqual(rz.body.manifests?.problems, [], 'every manifest applied');
        assert.equal(rz.body.manifests?.objects, 5, 'the Secret, the policy and three Clusters');
      }
      const deliveredBefore = Object.fromEntries(first.map((c) => [c, delivered(c)]));
      const pcaCertificates = api.service.stats.issued;

      const leaderName = holder();
      const leaderIx = ['r1', 'r2'].indexOf(leaderName ?? '');
      assert.ok(leaderIx >= 0, `a replica holds the Lease (${leaderName})`);
      procs[leaderIx].child.kill('SIGKILL');
      await procs[leaderIx].exited;
      const survivor = procs[1 - leaderIx];
      await until('the other replica to take the Lease', () => (holder() === ['r1', 'r2'][1 - leaderIx] ? true : undefined), 30_000, 100);
      await until(
        'the new leader to load the bundles',
        () => (/cluster bundles loaded from the state secret/.test(survivor.stderr()) ? true : undefined),
        30_000,
        100,
      );
      // Its first pass: each Cluster's status in its own store names the bundle the cluster holds.
      const survivorDir = join(tmp.path, ['r1', 'r2'][1 - leaderIx]);
      const confirmed = await until(
        "the new leader's first pass over the three clusters",
        async () => {
          const r = await runMeshca(['get', 'clusters', '--dir', survivorDir, '-o', 'json']);
          const items = (JSON.parse(r.stdout || '{"items":[]}') as { items: { metadata: { name: string }; status?: ClusterStatus }[] })
            .items;
          const digests = Object.fromEntries(items.map((i) => [i.metadata.name, i.status?.delivery?.digest]));
          return first.every((c) => digests[c]) ? digests : undefined;
        },
        30_000,
        200,
      );
      for (const c of first)
        assert.equal(confirmed[c], deliveredBefore[c].digest, `${c}: the new leader found the delivered bundle current`);

      // A change of the directory, as a ConfigMap update would make it: a fourth cluster, one fewer.
      writeFileSync(join(manifests, 'clusters.yaml'), (['east', 'west', 'north'] as const).map(clusterYaml).join('---\n'));
      await until('north to get its cacerts', () => (remote('north') ? true : undefined), 40_000, 100);
      await until('central to leave the state Secret', () => (stateData()['cluster.central.ca-cert.pem'] ? undefined : true), 40_000, 100);
      checkChain('north', pcaIntermediatePem);
      for (const c of ['east', 'west'] as const) {
        assert.deepEqual(delivered(c), deliveredBefore[c], `${c}: the new leader re-delivered nothing (same digest, same Secret version)`);
      }
      const north = new X509Certificate(remoteFiles('north')['ca-cert.pem']).serialNumber;
      assert.ok(!serials.has(north), 'north has an intermediate of its own');
      assert.equal(api.service.stats.issued, pcaCertificates, 'no PCA certificate after the failover');
      assert.match(survivor.stderr(), /pruned: no longer in the manifests directory/);
      assert.doesNotMatch(survivor.stderr(), /"cluster (east|west): [^"]*new intermediate/, 'east and west were not re-issued');

      // A manifest that fails validation: reported by /readyz with its file and reason, the rest kept.
      const bad = join(manifests, 'typo.yaml');
      writeFileSync(bad, 'apiVersion: meshca.io/v1alpha1\nkind: Cluster\nmetadata: {name: south}\nspec: {kubeconfg: {file: x}}\n');
      const survivorHttp = ready[1 - leaderIx].http;
      const problems = await until(
        '/readyz to report the invalid manifest',
        async () => {
          const rz = await getJson<{ manifests: { problems: { file: string; reason: string }[] } }>(survivorHttp, '/readyz');
          return rz.body.manifests.problems.length > 0 ? { status: rz.status, problems: rz.body.manifests.problems } : undefined;
        },
        20_000,
        200,
      );
      assert.equal(problems.status, 200, 'the CA still serves');
      assert.deepEqual(
        problems.problems.map((p) => p.file),
        [bad],
      );
      assert.match(problems.problems[0].reason, /kubeconfg/);
      assert.match(survivor.stderr(), /manifest not applied/);
      assert.ok(remote('north') && stateData()['cluster.north.ca-cert.pem'], 'the valid manifests stay applied');
    } catch (e) {
      for (const [i, p] of procs.entries()) console.log(`# replica ${i} log tail:\n${p.stderr().slice(-4000)}`);
      throw e;
    }
  },
);
