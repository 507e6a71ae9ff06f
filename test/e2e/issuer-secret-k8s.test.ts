/**
 * `issuerSecretSource: kubernetes`: serve signs with the Secret cert-manager writes in the
 * cluster (here the Kubernetes API double), is not ready until it exists, follows a renewal
 * without a failed request, and keeps signing when the Secret is deleted or broken.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { privateKeyToPem } from '../../src/pki/keys.js';
import { startServer, type RunningServer } from '../../src/serve/index.js';
import { K8sDouble } from '../k8s-double/index.js';
import type { KubeObject } from '../k8s-double/index.js';
import { makeIntermediate, makeRoot, type Ca } from '../helpers/pki.js';
import { tempDir } from '../helpers/tmp.js';
import { waitFor } from './reload-helpers.js';
import { IstioCaClient } from './serve/ca-client.js';
import { ID, getJson, workloadCsr } from './serve/helpers.js';

const SECRETS = { resource: 'secrets', namespace: 'istio-system' };
const tmp = tempDir('meshca-issuer-secret-k8s-');
let double: K8sDouble;
let server: RunningServer | undefined;

before(async () => {
  double = await K8sDouble.start();
});
after(async () => {
  await server?.close();
  await double.close();
  tmp.cleanup();
});

/** The kubernetes.io/tls Secret cert-manager writes for the istio-ca Certificate. */
function tlsSecret(ca: Ca, root: Ca): KubeObject {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'istio-ca', annotations: { 'cert-manager.io/certificate-name': 'istio-ca' } },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(ca.cert.pem), 'tls.key': b64(privateKeyToPem(ca.key)), 'ca.crt': b64(root.cert.pem) },
  } as KubeObject;
}

interface Ready {
  reason?: string;
  upstream?: { ready: boolean; serial: string | null; lastError: { message: string } | null };
}

describe('issuer secret from the Kubernetes API', () => {
  it('waits for the Secret, signs with it, follows its renewal, keeps signing when it is broken or deleted', async () => {
    const kubeconfig = double.writeKubeconfig(join(tmp.path, 'kubeconfig'));
    server = await startServer({
      dir: join(tmp.path, 'state'),
      issuerSecret: 'istio-system/istio-ca',
      issuerSecretSource: 'kubernetes',
      kubeconfig,
      plaintext: true,
      rateLimit: 0,
      grpcAddr: '127.0.0.1:0',
      httpAddr: '127.0.0.1:0',
      logLevel: 'silent',
    });
    const http = server.httpAddress;
    const first = await getJson<Ready>(http, '/readyz');
    assert.equal(first.status, 503);
    assert.match(
      first.body.reason ?? '',
      /^secret istio-system\/istio-ca not found \(no tls\.crt, tls\.key, ca\.crt in the Kubernetes API at http:\/\/127\.0\.0\.1:\d+\)$/,
    );

    const root = makeRoot({ now: new Date(Date.now() - 86_400_000), cn: 'PCA root' });
    const ca1 = makeIntermediate(root, { now: new Date(), cn: 'istio-ca' });
    double.store.create(SECRETS, tlsSecret(ca1, root));
    await waitFor('ready', async () => ((await getJson(http, '/readyz')).status === 200 ? true : undefined));

    const ca2 = makeIntermediate(root, { now: new Date(), cn: 'istio-ca' });
    const token = await server.issueToken({ namespace: 'workshop', serviceAccount: 'frontend-sa' });
    const c = new IstioCaClient(server.grpcAddress, grpc.credentials.createInsecure());
    const issuers: string[] = [];
    const failures: string[] = [];
    let stopping = false;
    const loop = (async () => {
      while (!stopping) {
        try {
          const r = await c.createCertificate({ csr: workloadCsr(ID('workshop', 'frontend-sa')).csr }, { token });
          const leaf = new X509Certificate(r.certChain[0]);
          const issuer = new X509Certificate(r.certChain[1]);
          assert.ok(leaf.verify(issuer.publicKey));
          assert.equal(r.certChain[2], root.cert.pem);
          if (issuers.at(-1) !== issuer.serialNumber) issuers.push(issuer.serialNumber);
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    })();
    try {
      await waitFor('a first certificate', async () => (issuers.length > 0 ? true : undefined));
      assert.equal(issuers[0], ca1.cert.node.serialNumber);

      // cert-manager renews: the same Secret, a new key pair.
      double.store.update(SECRETS, 'istio-ca', () => tlsSecret(ca2, root));
      await waitFor('the renewed istio-ca signing', async () => (issuers.includes(ca2.cert.node.serialNumber) ? true : undefined));

      // Broken (a key from elsewhere), then deleted: logged and reported, the current CA keeps signing.
      double.store.update(SECRETS, 'istio-ca', () => tlsSecret({ cert: ca1.cert, key: ca2.key }, root));
      await waitFor('the refusal on /readyz', async () => {
        const r = await getJson<Ready>(http, '/readyz');
        return r.status === 200 && /tls\.key does not match/.test(r.body.upstream?.lastError?.message ?? '') ? true : undefined;
      });
      double.store.delete(SECRETS, 'istio-ca');
      await waitFor('the deletion on /readyz', async () => {
        const r = await getJson<Ready>(http, '/readyz');
        return r.status === 200 && /not found/.test(r.body.upstream?.lastError?.message ?? '') ? true : undefined;
      });
      const n = issuers.length;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(issuers.length, n);
      assert.equal(issuers.at(-1), ca2.cert.node.serialNumber, 'still the renewed CA');
    } finally {
      stopping = true;
      await loop;
      c.close();
    }
    assert.deepEqual(failures, []);
    assert.equal((await getJson<Ready>(http, '/readyz')).body.upstream?.serial, ca2.cert.serialHex);
  });
});
