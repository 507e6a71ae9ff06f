import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuthResult } from '../auth/types.js';
import { parseCertificate } from '../pki/certificate.js';
import { createCsr } from '../pki/csr.js';
import { generateKeyPair } from '../pki/keys.js';
import { createIntermediateCertificate, createRootCertificate } from '../pki/profiles.js';
import { Authority, type Policy } from './authority.js';
import { RateLimiter } from './rate-limit.js';

const NOW = new Date();
const ID = 'spiffe://cluster.local/ns/foo/sa/bar';

function authority(over: Partial<Policy> = {}, now = () => NOW): Authority {
  const then = new Date(NOW.getTime() - 3600_000);
  const rootKey = generateKeyPair('ec-p256').privateKey;
  const root = createRootCertificate({ key: rootKey, now: then });
  const kp = generateKeyPair('ec-p256');
  const inter = createIntermediateCertificate({
    issuerCert: root,
    issuerKey: rootKey,
    publicKey: kp.publicKey,
    subject: { commonName: 'i' },
    days: 10,
    now: then,
  }).cert;
  return new Authority(
    { signer: { cert: inter, key: kp.privateKey, chain: [root] }, roots: [root] },
    {
      trustDomain: 'cluster.local',
      trustDomainAliases: [],
      defaultTtlSeconds: 86400,
      maxTtlSeconds: 90 * 86400,
      maxCsrBytes: 32768,
      impersonationAllow: [],
      ...over,
    },
    now,
  );
}

const caller = (id = ID): AuthResult => ({ identities: [id], caller: id, method: 'local-token' });
const csrFor = (uris: string[]) => createCsr({ key: generateKeyPair('ec-p256').privateKey, sans: { uris } }).pem;

test('signs the caller identity with the default TTL; chain leaf..root', () => {
  const a = authority();
  const r = a.sign({ csr: csrFor([ID]), caller: caller(), ttlSeconds: 0 });
  assert.equal(r.chain.length, 3);
  assert.equal(r.chain[2], a.roots[0].pem);
  assert.deepEqual(r.roots, [a.roots[0].pem]);
  assert.equal(r.identity, ID);
  const leaf = parseCertificate(r.chain[0]);
  // Certificate times have whole seconds: allow the truncation.
  assert.ok(Math.abs((leaf.notAfter.getTime() - NOW.getTime()) / 1000 - 86400) < 1);
});

test('TTL above the maximum names both values', () => {
  const a = authority();
  assert.throws(
    () => a.sign({ csr: csrFor([ID]), caller: caller(), ttlSeconds: 100 * 86400 }),
    (e: Error & { reason: string }) => {
      assert.equal(e.reason, 'ttl_too_long');
      assert.match(e.message, /requested TTL 100d \(8640000s\) is above the maximum TTL 90d \(7776000s\)/);
      return true;
    },
  );
  assert.throws(() => a.ttlFor(-1), /non-negative/);
});

test('identity mismatch, oversized CSR', () => {
  const a = authority({ maxCsrBytes: 600 });
  assert.throws(() => a.sign({ csr: csrFor(['spiffe://cluster.local/ns/foo/sa/other']), caller: caller(), ttlSeconds: 0 }), {
    reason: 'identity_mismatch',
  });
  assert.throws(() => a.sign({ csr: csrFor([ID]) + 'x'.repeat(600), caller: caller(), ttlSeconds: 0 }), { reason: 'csr_too_large' });
});

test('trust-domain aliases; a SAN-less CSR still gets exactly one SPIFFE ID', () => {
  const a = authority({ trustDomainAliases: ['old.local'] });
  const r = a.sign({ csr: csrFor(['spiffe://old.local/ns/foo/sa/bar']), caller: caller(), ttlSeconds: 0 });
  assert.equal(r.identity, 'spiffe://old.local/ns/foo/sa/bar');
  const bare = a.sign({
    csr: createCsr({ key: generateKeyPair('ec-p256').privateKey, subject: { commonName: 'x' } }).pem,
    caller: caller(),
    ttlSeconds: 0,
  });
  assert.deepEqual(bare.issued.sans.uris, [ID]);
});

test('impersonation only for allowed callers', () => {
  const ztunnel = 'spiffe://cluster.local/ns/istio-system/sa/ztunnel';
  const a = authority({ impersonationAllow: [ztunnel] });
  const md = { ImpersonatedIdentity: ID };
  assert.equal(a.sign({ csr: csrFor([ID]), caller: caller(ztunnel), ttlSeconds: 0, metadata: md }).identity, ID);
  assert.throws(() => a.sign({ csr: csrFor([ID]), caller: caller('spiffe://cluster.local/ns/x/sa/y'), ttlSeconds: 0, metadata: md }), {
    reason: 'impersonation_denied',
  });
  assert.throws(
    () =>
      a.sign({ csr: csrFor([ID]), caller: caller(ztunnel), ttlSeconds: 0, metadata: { ImpersonatedIdentity: 'spiffe://evil/ns/a/sa/b' } }),
    { reason: 'bad_impersonated_identity' },
  );
  assert.throws(
    () =>
      a.sign({
        csr: csrFor([ID]),
        caller: caller(ztunnel),
        ttlSeconds: 0,
        metadata: { ImpersonatedIdentity: 'spiffe://cluster.local/ns/Istio_System/sa/b' },
      }),
    { reason: 'bad_impersonated_identity' },
  );
});

test('an expired issuing CA makes the authority unavailable', () => {
  const a = authority({}, () => new Date(NOW.getTime() + 30 * 86400_000));
  assert.match(a.notReadyReason() ?? '', /expired/);
  assert.throws(() => a.sign({ csr: csrFor([ID]), caller: caller(), ttlSeconds: 0 }), { code: 'unavailable', reason: 'ca_not_ready' });
});

test('rate limiter: burst then refusal, refills with time', () => {
  const l = new RateLimiter(2, 3);
  for (let i = 0; i < 3; i++) l.take('a', 0);
  assert.throws(() => l.take('a', 0), { code: 'resource_exhausted', reason: 'rate_limited' });
  l.take('b', 0);
  l.take('a', 500);
  assert.throws(() => l.take('a', 500), /retry in \d+ ms/);
  new RateLimiter(0).take('x', 0);
});
