import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runMeshca, type RunResult } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

const EXIT_RESOURCES_FAILED = 8;

const issuer = (spec: string): string => `apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: mesh, namespace: istio-system}
spec: ${spec}
`;

const CERT = `apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: web, namespace: istio-system}
spec:
  commonName: web
  secretName: web-tls
  duration: 24h
  privateKey: {algorithm: ECDSA, size: 256}
  issuerRef: {name: mesh, kind: Issuer}
`;

// A standalone request whose CSR is not one: final failure, as cert-manager records it.
const BAD_REQUEST = `apiVersion: cert-manager.io/v1
kind: CertificateRequest
metadata: {name: garbled, namespace: istio-system}
spec:
  request: ${Buffer.from('-----BEGIN CERTIFICATE REQUEST-----\nnot a csr\n-----END CERTIFICATE REQUEST-----\n').toString('base64')}
  issuerRef: {name: mesh, kind: Issuer}
`;

describe('apply and reconcile exit non-zero when a resource ends failed', () => {
  const tmp = tempDir('meshca-failed-');
  const dir = join(tmp.path, 'state');
  const meshca = (args: string[]): Promise<RunResult> => runMeshca([...args, '--dir', dir], { timeoutMs: 60_000 });
  const file = (name: string, text: string): string => {
    writeFileSync(join(tmp.path, name), text);
    return join(tmp.path, name);
  };
  after(() => tmp.cleanup());

  it('apply: an issuer whose CA secret is missing is listed with its reason and message, exit 8', async () => {
    const r = await meshca(['apply', '-f', file('bad.yaml', `${issuer('{ca: {secretName: no-such-secret}}')}---\n${CERT}`)]);
    assert.equal(r.code, EXIT_RESOURCES_FAILED, r.stdout + r.stderr);
    assert.match(r.stdout, /^certificate\.cert-manager\.io\/web created$/m, 'the documents were stored all the same');
    assert.match(r.stderr, /meshca: 1 resource\(s\) failed:/);
    assert.match(
      r.stderr,
      /^ {2}Issuer istio-system\/mesh: ErrInvalidKeyPair: error getting keypair for CA issuer: secret "istio-system\/no-such-secret" not found$/m,
    );
  });

  it('reconcile reports the same failure with the same exit code; --dry-run does not', async () => {
    const r = await meshca(['reconcile']);
    assert.equal(r.code, EXIT_RESOURCES_FAILED, r.stdout + r.stderr);
    assert.match(r.stderr, /Issuer istio-system\/mesh: ErrInvalidKeyPair: /);
    const dry = await meshca(['reconcile', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
  });

  it('a standalone request that failed is listed too', async () => {
    const r = await meshca(['apply', '-f', file('fix.yaml', `${issuer('{selfSigned: {}}')}---\n${BAD_REQUEST}`)]);
    assert.equal(r.code, EXIT_RESOURCES_FAILED, r.stdout + r.stderr);
    assert.match(r.stderr, /meshca: 1 resource\(s\) failed:/);
    assert.match(r.stderr, /^ {2}CertificateRequest istio-system\/garbled: Failed: Failed to decode CSR in spec\.request: /m);
    assert.doesNotMatch(r.stderr, /^ {2}Issuer istio-system\/mesh:/m, 'the issuer is fixed');
  });

  it('once nothing is failed, apply and reconcile exit 0 and the certificate is issued', async () => {
    const del = await meshca(['delete', 'certificaterequest', 'garbled', '-n', 'istio-system']);
    assert.equal(del.code, 0, del.stderr);
    const r = await meshca(['reconcile']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.doesNotMatch(r.stderr, /failed/);
    const cert = new X509Certificate(readFileSync(join(dir, 'secrets', 'istio-system', 'web-tls', 'tls.crt')));
    assert.match(cert.subject, /CN=web/);
  });
});

const RTP_MISSING_SECRET = `apiVersion: admin.gloo.solo.io/v2
kind: RootTrustPolicy
metadata: {name: rtp, namespace: gloo-mesh}
spec:
  config:
    mgmtServerCa:
      secretRef: {name: no-such-root, namespace: gloo-mesh}
`;

describe('cluster add, cluster remove and delete report failed resources as apply does', () => {
  const tmp = tempDir('meshca-failed-cluster-');
  const dir = join(tmp.path, 'state');
  const meshca = (args: string[]): Promise<RunResult> => runMeshca([...args, '--dir', dir], { timeoutMs: 60_000 });
  after(() => tmp.cleanup());

  it('a cluster added under a policy whose root secret is missing: registered, exit 8, the policy listed', async () => {
    writeFileSync(join(tmp.path, 'rtp.yaml'), RTP_MISSING_SECRET);
    const stored = await meshca(['apply', '--no-reconcile', '-f', join(tmp.path, 'rtp.yaml')]);
    assert.equal(stored.code, 0, stored.stderr);
    for (const args of [
      ['cluster', 'add', 'east'],
      ['cluster', 'add', 'west'],
      ['cluster', 'remove', 'west'],
      ['delete', 'cluster', 'east'],
    ]) {
      const r = await meshca(args);
      assert.equal(r.code, EXIT_RESOURCES_FAILED, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /meshca: 1 resource\(s\) failed:/);
      assert.match(r.stderr, /^ {2}RootTrustPolicy gloo-mesh\/rtp: CAUnavailable: .*no-such-root not found/m);
    }
    const added = await meshca(['cluster', 'add', 'north', '--no-reconcile']);
    assert.equal(added.code, 0, '--no-reconcile runs no controller, so reports nothing');
    assert.match((await meshca(['get', 'clusters', '-o', 'name'])).stdout, /north/);
  });
});
