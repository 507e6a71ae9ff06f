import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createCsr } from './csr.js';
import { MeshcaError } from './errors.js';
import { issueWorkloadCertificate } from './issue.js';
import { generateKeyPair } from './keys.js';
import { createIntermediateCertificate, createRootCertificate } from './profiles.js';

const now = new Date('2030-01-01T00:00:00Z');
const rootKey = generateKeyPair('ec-p256');
const root = createRootCertificate({ key: rootKey.privateKey, now });
const interKey = generateKeyPair('ec-p256');
const inter = createIntermediateCertificate({
  issuerCert: root,
  issuerKey: rootKey.privateKey,
  publicKey: interKey.publicKey,
  subject: { commonName: 'mesh' },
  days: 30,
  now,
}).cert;
const signer = { cert: inter, key: interKey.privateKey, chain: [root] };
const wl = generateKeyPair('ec-p256').privateKey;
const A = 'spiffe://cluster.local/ns/a/sa/a';
const A_ALIAS = 'spiffe://old.local/ns/a/sa/a';

function refusal(f: () => unknown): MeshcaError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof MeshcaError, String(e));
    return e;
  }
  assert.fail('expected a refusal');
}

test('issues one SPIFFE ID, chain leaf, intermediate, root', () => {
  const csr = createCsr({ key: wl, sans: { uris: [A] } });
  const r = issueWorkloadCertificate(signer, { csr: csr.pem, identities: [A, A_ALIAS], ttlSeconds: 3600, now });
  assert.deepEqual(r.sans.uris, [A]);
  assert.equal(r.chain.length, 3);
  assert.equal(r.chain[1], inter.pem);
  assert.equal(r.chain[2], root.pem);
  const x = new X509Certificate(r.certPem);
  assert.equal(x.subjectAltName, `URI:${A}`);
  assert.ok(x.verify(inter.publicKey));
});

test('a CSR without SANs gets the caller primary identity only, never every alias', () => {
  const csr = createCsr({ key: wl });
  const r = issueWorkloadCertificate(signer, { csr: csr.pem, identities: [A, A_ALIAS], ttlSeconds: 3600, now });
  assert.deepEqual(r.sans.uris, [A]);
  assert.equal(new X509Certificate(r.certPem).subjectAltName, `URI:${A}`);
});

test('a CSR may name an alias of the caller', () => {
  const csr = createCsr({ key: wl, sans: { uris: [A_ALIAS] } });
  assert.deepEqual(issueWorkloadCertificate(signer, { csr: csr.pem, identities: [A, A_ALIAS], ttlSeconds: 3600, now }).sans.uris, [
    A_ALIAS,
  ]);
});

test('refusals: another identity, DNS names, several URIs, no identity at all', () => {
  const other = refusal(() =>
    issueWorkloadCertificate(signer, {
      csr: createCsr({ key: wl, sans: { uris: ['spiffe://cluster.local/ns/b/sa/b'] } }).pem,
      identities: [A],
      ttlSeconds: 60,
      now,
    }),
  );
  assert.equal(other.code, 'permission_denied');
  assert.equal(other.reason, 'identity_mismatch');
  assert.match(other.message, /ns\/b\/sa\/b.*authenticated as spiffe:\/\/cluster.local\/ns\/a\/sa\/a/);
  const dns = refusal(() =>
    issueWorkloadCertificate(signer, {
      csr: createCsr({ key: wl, sans: { uris: [A], dnsNames: ['evil.example'] } }).pem,
      identities: [A],
      ttlSeconds: 60,
      now,
    }),
  );
  assert.equal(dns.reason, 'san_not_allowed');
  assert.match(dns.message, /DNS:evil\.example/);
  const two = refusal(() =>
    issueWorkloadCertificate(signer, {
      csr: createCsr({ key: wl, sans: { uris: [A, A_ALIAS] } }).pem,
      identities: [A, A_ALIAS],
      ttlSeconds: 60,
      now,
    }),
  );
  assert.equal(two.reason, 'multiple_uris');
  const none = refusal(() => issueWorkloadCertificate(signer, { csr: createCsr({ key: wl }).pem, identities: [], ttlSeconds: 60, now }));
  assert.equal(none.reason, 'no_identity');
});
