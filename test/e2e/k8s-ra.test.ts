import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { K8sDouble, type KubeObject } from '../k8s-double/index.js';
import { opensslVerify } from '../helpers/openssl.js';
import { runMeshca } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { startK8sSigner } from './k8s-signer-process.js';
import { IstioCaClient } from './serve/ca-client.js';
import { ID, spawnServe, workloadCsr, type ServeProcess } from './serve/helpers.js';

/**
 * Registration-authority mode end to end: `meshca serve --upstream k8s-csr` turns each workload
 * CSR into a Kubernetes CSR; `meshca k8s-signer` (another process, its own root: the "external
 * CA") signs it; both talk to the API server double. The proxy-side client trusts only the
 * external root, for the serving certificate as for the workload chain.
 */
const tmp = tempDir('meshca-k8s-ra-');
const SIGNER = 'example.com/foo';
let double: K8sDouble;
let signer: ChildProcess;
let externalRoot: string;
let rootFile: string;
let ra: ServeProcess;
let manual: ServeProcess;
const created: KubeObject[] = [];
const deleted: string[] = [];

function startSigner(kubeconfig: string): Promise<{ rootFile: string }> {
  return startK8sSigner({ dir: join(tmp.path, 'external-ca'), signerName: SIGNER, kubeconfig }, (c) => (signer = c));
}

before(async () => {
  double = await K8sDouble.start();
  double.tokens.set('k8s-token-cart', { username: 'system:serviceaccount:shop:cart', audiences: ['istio-ca'] });
  double.tokens.set('k8s-token-deny', { username: 'system:serviceaccount:shop:deny', audiences: ['istio-ca'] });
  double.users.set('ra-token', 'system:serviceaccount:meshca-system:meshca');
  double.users.set('signer-token', 'system:serviceaccount:signer-ca-system:signer');
  double.store.subscribe((resource, e) => {
    if (resource !== 'certificatesigningrequests') return;
    if (e.type === 'ADDED') created.push(e.object);
    if (e.type === 'DELETED') deleted.push(e.object.metadata.name);
  });
  const signerInfo = await startSigner(double.writeKubeconfig(join(tmp.path, 'kc-signer'), 'signer-token', 'signer-ca-system'));
  rootFile = signerInfo.rootFile;
  externalRoot = readFileSync(rootFile, 'utf8');
  const kc = double.writeKubeconfig(join(tmp.path, 'kc-ra'), 'ra-token');
  const common = [
    '--grpc-addr',
    '127.0.0.1:0',
    '--http-addr',
    '127.0.0.1:0',
    '--log-level',
    'warn',
    '--upstream',
    'k8s-csr',
    '--k8s-signer-name',
    SIGNER,
    '--external-ca-root',
    rootFile,
    '--kubeconfig',
    kc,
    '--local-tokens',
    'false',
  ];
  ra = spawnServe(['--dir', join(tmp.path, 'ra'), ...common, '--k8s-approve']);
  manual = spawnServe(['--dir', join(tmp.path, 'manual'), ...common, '--k8s-approve', 'false', '--k8s-csr-timeout', '3s', '--plaintext']);
  await Promise.all([ra.ready, manual.ready]);
});

after(async () => {
  await Promise.all([ra?.stop(), manual?.stop()]);
  signer?.kill('SIGTERM');
  await double?.close();
  tmp.cleanup();
});

describe('RA mode: meshca serve --upstream k8s-csr with a meshca signer controller', () => {
  it('issues a workload certificate through a Kubernetes CSR; the chain verifies to the external root', async () => {
    const { grpc: address } = await ra.ready;
    // The serving certificate came through the signer too: trusting the external root is enough.
    const client = IstioCaClient.tls(address, externalRoot);
    try {
      const res = await client.createCertificate(
        { csr: workloadCsr(ID('shop', 'cart')).csr, ttlSeconds: 3600 },
        { token: 'k8s-token-cart' },
      );
      assert.equal(res.certChain.length, 3, 'leaf, intermediate, external root');
      assert.equal(res.certChain[2].trim(), externalRoot.trim());
      assert.deepEqual(
        res.roots.map((r) => r.trim()),
        [externalRoot.trim()],
      );
      const leaf = new X509Certificate(res.certChain[0]);
      assert.equal(leaf.subjectAltName, `URI:${ID('shop', 'cart')}`);
      const life = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 1000;
      assert.ok(life >= 3600 && life <= 3661, `TTL honoured as expirationSeconds (${life}s)`);
      writeFileSync(join(tmp.path, 'leaf.pem'), res.certChain[0]);
      writeFileSync(join(tmp.path, 'inter.pem'), res.certChain[1]);
      const v = opensslVerify(rootFile, join(tmp.path, 'leaf.pem'), join(tmp.path, 'inter.pem'));
      assert.equal(v.code, 0, v.stderr + v.stdout);

      const csr = created.find(
        (c) =>
          Buffer.from((c.spec as { request: string }).request, 'base64')
            .toString()
            .includes('CERTIFICATE REQUEST') && (c.spec as { expirationSeconds?: number }).expirationSeconds === 3600,
      );
      assert.ok(csr, 'a Kubernetes CSR was created');
      const spec = csr.spec as { signerName: string; usages: string[]; username: string };
      assert.equal(spec.signerName, SIGNER);
      assert.deepEqual(spec.usages, ['digital signature', 'key encipherment', 'server auth', 'client auth']);
      assert.equal(spec.username, 'system:serviceaccount:meshca-system:meshca', "created with meshca's own credentials");
      assert.ok(deleted.includes(csr.metadata.name), 'and deleted once answered');
      assert.ok(
        double.requests.some(
          (r) =>
            r.method === 'PUT' &&
            r.path === `/apis/certificates.k8s.io/v1/certificatesigningrequests/${csr.metadata.name}/approval` &&
            r.user.includes('meshca'),
        ),
        'approved by meshca through /approval',
      );
      assert.ok(
        double.requests.some(
          (r) =>
            r.path.startsWith('/apis/certificates.k8s.io/v1/certificatesigningrequests?') &&
            r.path.includes('watch=true') &&
            r.path.includes(`metadata.name%3D${csr.metadata.name}`),
        ),
        'waited with a watch on that CSR',
      );
    } finally {
      client.close();
    }
  });

  it('meshca agent --ca-root DIR/trust-bundle.pem works: serve wrote the external root there, no root/ of its own', async () => {
    const { grpc: address } = await ra.ready;
    const file = join(tmp.path, 'ra', 'trust-bundle.pem');
    assert.equal(readFileSync(file, 'utf8').trim(), externalRoot.trim());
    assert.equal(existsSync(join(tmp.path, 'ra', 'root')), false);
    // The agent reads its identity from a JWT; the double's TokenReview only looks the string up.
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const jwt = `${b64({ alg: 'RS256' })}.${b64({ sub: 'system:serviceaccount:shop:cart' })}.c2ln`;
    double.tokens.set(jwt, { username: 'system:serviceaccount:shop:cart', audiences: ['istio-ca'] });
    const tokenFile = join(tmp.path, 'agent.token');
    writeFileSync(tokenFile, jwt);
    const out = join(tmp.path, 'agent-out');
    const agent = await runMeshca(['agent', '--once', '--ca-addr', address, '--ca-root', file, '--token-file', tokenFile, '--out', out]);
    assert.equal(agent.code, 0, agent.stderr);
    const chain = readFileSync(join(out, 'cert-chain.pem'), 'utf8');
    const v = opensslVerify(file, join(out, 'cert-chain.pem'), join(out, 'cert-chain.pem'));
    assert.equal(v.code, 0, v.stderr + v.stdout);
    assert.equal(new X509Certificate(chain).subjectAltName, `URI:${ID('shop', 'cart')}`);
  });

  it('maps Denied to PERMISSION_DENIED, Failed to UNAVAILABLE and no answer to DEADLINE_EXCEEDED, deleting every CSR', async () => {
    const { grpc: address } = await manual.ready;
    const client = new IstioCaClient(address, grpc.credentials.createInsecure());
    // An administrator answers the next CSR the manual RA creates (it does not approve its own).
    const answerNext = (f: (name: string) => void) => {
      const before = created.length;
      const t = setInterval(() => {
        const c = created.slice(before).find((o) => (o.spec as { signerName: string }).signerName === SIGNER);
        if (c) {
          clearInterval(t);
          f(c.metadata.name);
        }
      }, 10);
      return () => clearInterval(t);
    };
    const call = () => client.createCertificate({ csr: workloadCsr(ID('shop', 'deny')).csr }, { token: 'k8s-token-deny' });
    try {
      let stop = answerNext((n) => double.decide(n, 'Denied', 'SecurityReview'));
      await assert.rejects(call(), (e: { code: number; details: string }) => {
        assert.equal(e.code, grpc.status.PERMISSION_DENIED);
        assert.match(e.details, /denied \(SecurityReview\)/);
        return true;
      });
      stop();
      stop = answerNext((n) => {
        double.decide(n, 'Approved');
        double.store.update({ resource: 'certificatesigningrequests' }, n, (o) => ({
          ...o,
          status: {
            ...(o.status as object),
            conditions: [
              ...((o.status as { conditions: unknown[] }).conditions ?? []),
              { type: 'Failed', status: 'True', reason: 'SignerBroken', message: 'HSM offline' },
            ],
          },
        }));
      });
      await assert.rejects(call(), (e: { code: number; details: string }) => {
        assert.equal(e.code, grpc.status.UNAVAILABLE);
        assert.match(e.details, /SignerBroken.*HSM offline/);
        return true;
      });
      stop();
      const started = Date.now();
      await assert.rejects(call(), (e: { code: number; details: string }) => {
        assert.equal(e.code, grpc.status.DEADLINE_EXCEEDED);
        assert.match(e.details, /not approved/);
        return true;
      });
      assert.ok(Date.now() - started >= 2900, 'waited for k8sCsrTimeout');
      const ours = created.filter(
        (c) =>
          (c.spec as { username: string }).username.includes('meshca') &&
          !(c.spec as { expirationSeconds?: number }).expirationSeconds?.toString().startsWith('3600'),
      );
      await new Promise((r) => setTimeout(r, 100));
      for (const c of ours) assert.ok(deleted.includes(c.metadata.name) || !double.csr(c.metadata.name), `CSR ${c.metadata.name} deleted`);
      assert.equal(double.store.list({ resource: 'certificatesigningrequests' }).length, 0, 'no CSR left behind');
    } finally {
      client.close();
    }
  });
});
