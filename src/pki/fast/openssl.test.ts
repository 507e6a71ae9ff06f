import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createCsr } from '../csr.js';
import { issueWorkloadCertificate } from '../issue.js';
import { generateKeyPair, type KeyAlgorithm } from '../keys.js';
import { makeSigner, openssl, tempDir } from './testing.js';

const ID = 'spiffe://cluster.local/ns/shop/sa/cart';
const now = new Date();

const CASES: [KeyAlgorithm, KeyAlgorithm][] = [
  ['ec-p256', 'ec-p256'],
  ['ec-p384', 'rsa-2048'],
  ['rsa-2048', 'rsa-2048'],
  ['rsa-2048', 'ec-p256'],
];

for (const [signerAlg, csrAlg] of CASES) {
  test(`openssl accepts a fast-path certificate: ${signerAlg} CA, ${csrAlg} request`, () => {
    const signer = makeSigner(signerAlg, now);
    const csr = createCsr({ key: generateKeyPair(csrAlg).privateKey, sans: { uris: [ID] } });
    const issued = issueWorkloadCertificate(signer, { csr: csr.pem, identities: [ID], ttlSeconds: 3600, now });

    const x = new X509Certificate(issued.certDer);
    assert.equal(x.subjectAltName, `URI:${ID}`);
    assert.equal(x.ca, false);
    assert.ok(x.verify(signer.cert.publicKey));
    assert.ok(x.checkIssued(signer.cert.node));

    const t = tempDir();
    try {
      const root = t.file('root.pem', signer.chain[0].pem);
      const inter = t.file('intermediate.pem', signer.cert.pem);
      const leaf = t.file('leaf.pem', issued.certPem);
      const v = openssl(['verify', '-CAfile', root, '-untrusted', inter, leaf]);
      assert.equal(v.status, 0, v.stderr + v.stdout);
      assert.match(v.stdout, /: OK/);

      const text = openssl(['x509', '-noout', '-text', '-in', leaf]);
      assert.equal(text.status, 0, text.stderr);
      const out = text.stdout;
      assert.match(out, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
      assert.match(out, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
      assert.match(out, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
      assert.match(out, new RegExp(`X509v3 Subject Alternative Name: critical\\s+URI:${ID.replace(/[/.]/g, '\\$&')}`));
      assert.match(out, /X509v3 Authority Key Identifier:/);
      assert.match(out, /Subject: *\n/);
    } finally {
      t.cleanup();
    }
  });
}
