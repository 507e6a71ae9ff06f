import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KubeClient } from '../../src/k8s/client.js';
import { CsrSignerController, type SignerOutcome } from '../../src/k8s/signer-controller.js';
import { createCsr } from '../../src/pki/csr.js';
import { generateKeyPair, generateKeyPairWith } from '../../src/pki/keys.js';
import { K8sDouble, createCsrObject, csrObject, eventually, failedCondition, issuedChain } from '../k8s-double/index.js';
import { makeIntermediate, makeRoot } from '../helpers/pki.js';
import { openssl, opensslOk, opensslVerify } from '../helpers/openssl.js';
import { tempDir } from '../helpers/tmp.js';

const SIGNER = 'example.com/foo';
const tmp = tempDir('meshca-k8s-signer-');
const root = makeRoot({ now: new Date(Date.now() - 86_400_000) });
const inter = makeIntermediate(root, { now: new Date(Date.now() - 86_400_000) });
const rootFile = join(tmp.path, 'root.pem');
writeFileSync(rootFile, root.cert.pem);

let double: K8sDouble;
let controller: CsrSignerController;
const stop = new AbortController();
let running: Promise<void>;
const outcomes: SignerOutcome[] = [];

const pem = (o: Parameters<typeof createCsr>[0]['sans'] = { dnsNames: ['web.example.com'] }, subject = { commonName: 'web' }) =>
  createCsr({ key: generateKeyPair('ec-p256').privateKey, subject, sans: o }).pem;

function statusWrites(name: string): number {
  return double.requests.filter(
    (r) => r.method === 'PUT' && r.path.startsWith(`/apis/certificates.k8s.io/v1/certificatesigningrequests/${name}/status`),
  ).length;
}

before(async () => {
  double = await K8sDouble.start();
  const client = await KubeClient.load({ kubeconfig: double.writeKubeconfig(join(tmp.path, 'kubeconfig')) });
  controller = new CsrSignerController({
    client,
    signerNames: [SIGNER, 'example.com/second'],
    signer: () => ({ cert: inter.cert, key: inter.key, chain: [root.cert] }),
    policy: { defaultTtlSeconds: 86_400, maxTtlSeconds: 7 * 86_400, trustDomains: ['cluster.local'] },
    onOutcome: (o) => outcomes.push(o),
  });
  running = controller.run(stop.signal);
});

after(async () => {
  stop.abort();
  await running;
  await double.close();
  tmp.cleanup();
});

describe('CSR signer controller against the API double', () => {
  it('signs an approved CSR for its signer: chain to the root, usages, subject and SANs as asked', async () => {
    createCsrObject(
      double,
      csrObject('web', pem({ dnsNames: ['web.example.com'], uris: ['spiffe://cluster.local/ns/a/sa/web'] }), { expirationSeconds: 3600 }),
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(issuedChain(double, 'web'), undefined, 'not signed before approval');
    double.decide('web', 'Approved');
    const chain = await eventually(() => issuedChain(double, 'web'), 10_000, 'certificate');
    const certs = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)!;
    assert.equal(certs.length, 2, 'leaf + intermediate, no root');
    const leaf = new X509Certificate(certs[0]);
    assert.equal(leaf.subject, 'CN=web');
    assert.match(leaf.subjectAltName ?? '', /DNS:web\.example\.com/);
    assert.match(leaf.subjectAltName ?? '', /URI:spiffe:\/\/cluster\.local\/ns\/a\/sa\/web/);
    const lifetime = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 1000;
    assert.ok(lifetime >= 3600 && lifetime <= 3600 + 61, `expirationSeconds honoured (got ${lifetime}s)`);
    writeFileSync(join(tmp.path, 'web.pem'), chain);
    writeFileSync(join(tmp.path, 'web-leaf.pem'), certs[0]);
    writeFileSync(join(tmp.path, 'web-inter.pem'), certs[1]);
    const v = opensslVerify(rootFile, join(tmp.path, 'web-leaf.pem'), join(tmp.path, 'web-inter.pem'), ['-purpose', 'sslserver']);
    assert.equal(v.code, 0, v.stderr + v.stdout);
    const text = opensslOk(['x509', '-in', join(tmp.path, 'web-leaf.pem'), '-noout', '-text']);
    assert.match(text, /Digital Signature, Key Encipherment/);
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /CA:FALSE/);
    assert.equal(statusWrites('web'), 1);
  });

  it('caps expirationSeconds at the policy maximum and uses the default without it; maps usages exactly', async () => {
    createCsrObject(double, csrObject('long', pem(), { expirationSeconds: 365 * 86_400, usages: ['digital signature', 'client auth'] }));
    createCsrObject(double, csrObject('default', pem(), { signerName: 'example.com/second' }));
    double.decide('long', 'Approved');
    double.decide('default', 'Approved');
    const long = new X509Certificate(await eventually(() => issuedChain(double, 'long')));
    assert.ok((Date.parse(long.validTo) - Date.now()) / 1000 <= 7 * 86_400 + 5, 'capped at 7 days');
    const text = openssl(['x509', '-noout', '-text'], { input: long.toString() }).stdout;
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
    assert.match(text, /X509v3 Extended Key Usage:\s+TLS Web Client Authentication\n/);
    const def = new X509Certificate(await eventually(() => issuedChain(double, 'default')));
    const days = (Date.parse(def.validTo) - Date.now()) / 86_400_000;
    assert.ok(days > 0.99 && days <= 1.001, `default TTL 24h (got ${days} days)`);
  });

  it('marks requests it must not sign Failed with a reason', async () => {
    const rsa1024 = generateKeyPairWith('rsa', { modulusLength: 1024 });
    writeFileSync(join(tmp.path, 'weak.key'), rsa1024.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const weak = opensslOk(['req', '-new', '-key', join(tmp.path, 'weak.key'), '-subj', '/CN=weak']);
    const garbage = '-----BEGIN CERTIFICATE REQUEST-----\nMIIBAAAA\n-----END CERTIFICATE REQUEST-----\n';
    const cases: [string, string, Parameters<typeof csrObject>[2], string][] = [
      ['certsign', pem(), { usages: ['digital signature', 'cert sign'] }, 'UnsupportedUsage'],
      ['anyusage', pem(), { usages: ['any'] }, 'UnsupportedUsage'],
      ['weakkey', weak, {}, 'KeyPolicy'],
      ['garbage', garbage, {}, 'BadCSR'],
      ['foreign', pem({ uris: ['spiffe://evil.example/ns/a/sa/b'] }), {}, 'ForeignTrustDomain'],
    ];
    const ca = createCsr({ key: generateKeyPair('ec-p256').privateKey, subject: { commonName: 'sub-ca' }, isCA: true }).pem;
    cases.push(['wantsca', ca, {}, 'CANotAllowed']);
    for (const [name, csr, o] of cases) {
      createCsrObject(double, csrObject(name, csr, o));
      double.decide(name, 'Approved');
    }
    for (const [name, , , reason] of cases) {
      const f = await eventually(() => failedCondition(double, name), 10_000, `${name} Failed`);
      assert.equal(f.reason, reason, `${name}: ${f.message}`);
      assert.ok((f.message ?? '').length > 10, 'with a message a human can act on');
      assert.equal(issuedChain(double, name), undefined);
    }
    assert.match(failedCondition(double, 'certsign')!.message!, /"cert sign".*CA/);
    assert.match(failedCondition(double, 'weakkey')!.message!, /1024 bits/);
  });

  it('never touches CSRs of other signers, denied ones or unapproved ones', async () => {
    createCsrObject(double, csrObject('other', pem(), { signerName: 'example.com/bar' }));
    double.decide('other', 'Approved');
    createCsrObject(double, csrObject('denied', pem()));
    double.decide('denied', 'Denied');
    createCsrObject(double, csrObject('waiting', pem()));
    // A CSR of ours signed afterwards proves the earlier events were seen.
    createCsrObject(double, csrObject('marker', pem()));
    double.decide('marker', 'Approved');
    await eventually(() => issuedChain(double, 'marker'));
    await controller.idle();
    for (const n of ['other', 'denied', 'waiting']) {
      assert.equal(statusWrites(n), 0, `${n} untouched`);
      assert.equal(issuedChain(double, n), undefined);
    }
    assert.ok(!outcomes.some((o) => ['other', 'denied', 'waiting'].includes(o.name)));
  });

  it('handles each CSR once even when it changes repeatedly before and while it is signed', async () => {
    createCsrObject(double, csrObject('busy', pem()));
    double.decide('busy', 'Approved');
    for (let i = 0; i < 20; i++) {
      double.store.update({ resource: 'certificatesigningrequests' }, 'busy', (o) => ({
        ...o,
        metadata: { ...o.metadata, annotations: { touch: String(i) } },
      }));
    }
    await eventually(() => issuedChain(double, 'busy'));
    await controller.idle();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(outcomes.filter((o) => o.name === 'busy').length, 1);
    assert.ok(statusWrites('busy') >= 1);
  });

  it('re-lists after 410 Gone and signs what happened while its watch was down', async () => {
    double.dropWatches();
    createCsrObject(double, csrObject('during-outage', pem()));
    double.decide('during-outage', 'Approved');
    double.store.compact();
    const lists = () =>
      double.requests.filter((r) => r.method === 'GET' && r.path === '/apis/certificates.k8s.io/v1/certificatesigningrequests').length;
    const before = lists();
    await eventually(() => issuedChain(double, 'during-outage'), 15_000, 'signed after re-list');
    assert.ok(lists() > before, 'a new list was made');
    assert.ok(
      double.requests.some((r) => /watch=true/.test(r.path) && /resourceVersion=/.test(r.path)),
      'watches resume from a resourceVersion',
    );
  });
});
