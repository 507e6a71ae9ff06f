import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { K8sDouble, createCsrObject, csrObject, eventually, issuedChain } from '../k8s-double/index.js';
import { createCsr } from '../../src/pki/csr.js';
import { generateKeyPair } from '../../src/pki/keys.js';
import { tempDir } from '../helpers/tmp.js';
import { IstioCaClient } from './serve/ca-client.js';
import { ID, spawnServe, workloadCsr, type ServeProcess } from './serve/helpers.js';

/**
 * Two `meshca serve` replicas as the Deployment runs them: CA state in the meshca-state Secret,
 * a Lease deciding which one runs the CSR signer and publishes cacerts, both serving gRPC.
 */
const tmp = tempDir('meshca-k8s-ha-');
let double: K8sDouble;
const replicas: Record<string, ServeProcess> = {};

function start(name: string): ServeProcess {
  double.users.set(`token-${name}`, name);
  const kc = double.writeKubeconfig(join(tmp.path, `kc-${name}`), `token-${name}`);
  return spawnServe([
    '--dir',
    join(tmp.path, name),
    '--grpc-addr',
    '127.0.0.1:0',
    '--http-addr',
    '127.0.0.1:0',
    '--log-level',
    'warn',
    '--kubeconfig',
    kc,
    '--local-tokens',
    'false',
    '--state-backend',
    'secret',
    '--leader-election',
    '--pod-name',
    name,
    '--lease-duration',
    '2s',
    '--lease-renew-deadline',
    '1500ms',
    '--lease-retry-period',
    '200ms',
    '--signer-names',
    'example.com/foo',
    '--publish-cacerts',
  ]);
}

const holder = () =>
  (double.store.get({ resource: 'leases', namespace: 'meshca-system' }, 'meshca-leader')?.spec as { holderIdentity?: string } | undefined)
    ?.holderIdentity;
const statusWriter = (csr: string) =>
  double.requests.find((r) => r.method === 'PUT' && r.path.endsWith(`/certificatesigningrequests/${csr}/status`))?.user;
const pem = () => createCsr({ key: generateKeyPair('ec-p256').privateKey, sans: { dnsNames: ['svc.example.com'] } }).pem;

before(async () => {
  double = await K8sDouble.start();
  double.tokens.set('k8s-token-cart', { username: 'system:serviceaccount:shop:cart', audiences: ['istio-ca'] });
  replicas.r1 = start('r1');
  replicas.r2 = start('r2');
  await Promise.all([replicas.r1.ready, replicas.r2.ready]);
});

after(async () => {
  await Promise.all(Object.values(replicas).map((r) => r.stop()));
  await double.close();
  tmp.cleanup();
});

describe('two meshca serve replicas in Kubernetes', () => {
  it('share one root from the state Secret and both serve certificates', async () => {
    const [a, b] = await Promise.all([replicas.r1.ready, replicas.r2.ready]);
    assert.equal(a.rootFingerprint, b.rootFingerprint, 'the first replica to save the state decided the root');
    const state = double.store.get({ resource: 'secrets', namespace: 'meshca-system' }, 'meshca-state');
    assert.ok(state, 'the state lives in a Secret');
    for (const r of [a, b]) {
      const rootPem = Buffer.from((state!.data as Record<string, string>)['root-cert.pem'], 'base64').toString();
      const client = IstioCaClient.tls(r.grpc, rootPem);
      try {
        const res = await client.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr }, { token: 'k8s-token-cart' });
        assert.equal(res.certChain.at(-1)!.trim(), rootPem.trim());
      } finally {
        client.close();
      }
    }
  });

  it('only the Lease holder signs CSRs and publishes cacerts; after it dies the other takes over', async () => {
    const leader = await eventually(() => holder(), 10_000, 'a lease holder');
    const follower = leader === 'r1' ? 'r2' : 'r1';
    createCsrObject(double, csrObject('first', pem()));
    double.decide('first', 'Approved');
    await eventually(() => issuedChain(double, 'first'), 10_000, 'first signed');
    assert.equal(statusWriter('first'), leader);
    const cacerts = await eventually(
      () => double.store.get({ resource: 'secrets', namespace: 'istio-system' }, 'cacerts'),
      10_000,
      'cacerts',
    );
    const stateSecret = double.store.get({ resource: 'secrets', namespace: 'meshca-system' }, 'meshca-state')!;
    assert.equal(
      (cacerts.data as Record<string, string>)['ca-cert.pem'],
      (stateSecret.data as Record<string, string>)['cluster.default.ca-cert.pem'],
    );
    assert.ok(
      !double.requests.some((r) => r.user === follower && r.method !== 'GET' && /certificatesigningrequests|secrets\/cacerts/.test(r.path)),
      'the follower wrote nothing',
    );

    const killed = Date.now();
    replicas[leader].child.kill('SIGKILL');
    await replicas[leader].exited;
    await eventually(() => holder() === follower, 10_000, 'takeover');
    assert.ok(Date.now() - killed >= 1500, 'after the lease expired');
    createCsrObject(double, csrObject('second', pem()));
    double.decide('second', 'Approved');
    await eventually(() => issuedChain(double, 'second'), 10_000, 'second signed');
    assert.equal(statusWriter('second'), follower);
  });
});
