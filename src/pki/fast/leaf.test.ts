import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createCsr } from '../csr.js';
import { issueWorkloadCertificate, issueWorkloadCertificateLibrary, type Signer, type WorkloadRequest } from '../issue.js';
import { generateKeyPair, generateKeyPairWith, type KeyAlgorithm } from '../keys.js';
import { createLeafCertificate, randomSerial } from '../profiles.js';
import { OID } from '../oids.js';
import { createLeafFast, leafSignerFor, parseCsrFast } from './index.js';
import { sec1Scalar } from './leaf.js';
import { makeSigner, tbsOf } from './testing.js';

const ID = 'spiffe://cluster.local/ns/default/sa/web';
const SIGNER_ALGS: KeyAlgorithm[] = ['ec-p256', 'ec-p384', 'rsa-2048'];
const CSR_ALGS: KeyAlgorithm[] = ['ec-p256', 'rsa-2048'];

// Keys are made once: RSA generation is slow.
const csrKeys = new Map(CSR_ALGS.map((a) => [a, generateKeyPair(a).privateKey]));

interface Scenario {
  name: string;
  now: Date;
  ttlSeconds: number;
  days: { root: number; intermediate: number };
  /** What NotAfter must be, given the issuer. */
  expectNotAfter: (s: Signer, now: Date, ttl: number) => number;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'plain',
    now: new Date('2025-03-04T05:06:07.891Z'),
    ttlSeconds: 86_400,
    days: { root: 3650, intermediate: 365 },
    expectNotAfter: (_s, now, ttl) => now.getTime() + ttl * 1000,
  },
  {
    name: 'NotAfter clamped to the issuer',
    now: new Date('2025-03-04T05:06:07.891Z'),
    ttlSeconds: 3 * 86_400,
    days: { root: 3650, intermediate: 1 },
    expectNotAfter: (s) => s.cert.notAfter.getTime(),
  },
  {
    name: 'NotAfter after 2050 (GeneralizedTime)',
    now: new Date('2049-12-31T23:30:00.500Z'),
    ttlSeconds: 7_200,
    days: { root: 3650, intermediate: 365 },
    expectNotAfter: (_s, now, ttl) => now.getTime() + ttl * 1000,
  },
];

function checkPair(signer: Signer, req: WorkloadRequest): void {
  const lib = issueWorkloadCertificateLibrary(signer, req);
  const fast = issueWorkloadCertificate(signer, req);
  assert.deepEqual(tbsOf(fast.certDer), tbsOf(lib.certDer), 'TBSCertificate bytes differ');
  // ECDSA signatures differ per run, so each is verified rather than compared; RSA PKCS#1 v1.5 ones
  // are deterministic, so the two certificates must be equal byte for byte.
  for (const r of [lib, fast]) assert.ok(new X509Certificate(r.certDer).verify(signer.cert.publicKey), 'signature does not verify');
  if (signer.key.asymmetricKeyType === 'rsa')
    assert.deepEqual(Buffer.from(fast.certDer), Buffer.from(lib.certDer), 'RSA-signed certificate bytes differ');
  const strip = (r: typeof lib) => ({ ...r, certDer: undefined, certPem: undefined, chain: r.chain.slice(1) });
  assert.deepEqual(strip(fast), strip(lib));
}

for (const sc of SCENARIOS) {
  for (const signerAlg of SIGNER_ALGS) {
    test(`fast TBS is byte-identical to the library: ${sc.name}, ${signerAlg} signer`, () => {
      const signer = makeSigner(signerAlg, sc.now, sc.days);
      for (const csrAlg of CSR_ALGS) {
        const csr = createCsr({ key: csrKeys.get(csrAlg)!, sans: { uris: [ID] } });
        for (const serial of [randomSerial(), randomSerial(() => Buffer.alloc(16, 0xff)), Buffer.from([0x01])]) {
          const req = { csr: csr.pem, identities: [ID], ttlSeconds: sc.ttlSeconds, now: sc.now, serial };
          checkPair(signer, req);
          const fast = issueWorkloadCertificate(signer, req);
          assert.equal(fast.notAfter.getTime(), sc.expectNotAfter(signer, sc.now, sc.ttlSeconds));
        }
      }
    });
  }
}

test('GeneralizedTime is used from 2050 on and UTCTime before', () => {
  const sc = SCENARIOS[2];
  const signer = makeSigner('ec-p256', sc.now, sc.days);
  const csr = createCsr({ key: csrKeys.get('ec-p256')!, sans: { uris: [ID] } });
  const r = issueWorkloadCertificate(signer, { csr: csr.der, identities: [ID], ttlSeconds: sc.ttlSeconds, now: sc.now });
  const hex = tbsOf(r.certDer).toString('hex');
  // notBefore 491231232900Z as UTCTime (tag 17), notAfter 20500101013000Z as GeneralizedTime (tag 18).
  assert.ok(hex.includes(`170d${Buffer.from('491231232900Z').toString('hex')}`), hex);
  assert.ok(hex.includes(`180f${Buffer.from('20500101013000Z').toString('hex')}`), hex);
});

test('createLeafFast matches createLeafCertificate with back-dating, several URIs and a fixed serial', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  const signer = makeSigner('ec-p256', now);
  const key = generateKeyPair('ec-p256');
  const csr = parseCsrFast(createCsr({ key: key.privateKey, sans: { uris: [ID] } }).der);
  for (const backdateSeconds of [0, 60, 86_400 * 400]) {
    const serial = randomSerial();
    const o = { uris: [ID, 'spiffe://cluster.local/ns/default/sa/other'], ttlSeconds: 600, now, backdateSeconds, serial };
    const lib = createLeafCertificate({
      ...o,
      issuerCert: signer.cert,
      issuerKey: signer.key,
      publicKey: key.publicKey,
      sans: { uris: o.uris },
    });
    const fast = createLeafFast(leafSignerFor(signer.cert, signer.key), { ...o, spki: csr.spkiDer });
    assert.deepEqual(tbsOf(fast.der), tbsOf(lib.der));
    assert.deepEqual({ ...fast, der: undefined }, { ...lib, der: undefined });
  }
});

test('the per-signer cache follows the key object', () => {
  const now = new Date();
  const signer = makeSigner('ec-p256', now);
  const a = leafSignerFor(signer.cert, signer.key);
  assert.equal(leafSignerFor(signer.cert, signer.key), a);
  const other = generateKeyPair('ec-p256').privateKey;
  assert.notEqual(leafSignerFor(signer.cert, other), a);
});

test('issuer checks and TTL errors are the library ones', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  const signer = makeSigner('ec-p256', now);
  const csr = createCsr({ key: csrKeys.get('ec-p256')!, sans: { uris: [ID] } }).pem;
  const cases: Partial<WorkloadRequest>[] = [
    { ttlSeconds: 0 },
    { ttlSeconds: Number.NaN },
    { now: new Date('2040-01-01T00:00:00Z') }, // the CA has expired
    { now: new Date('2020-01-01T00:00:00Z') }, // the CA is not yet valid
    { identities: ['spiffe://cluster.local/ns/default/sa/other'] },
  ];
  for (const c of cases) {
    const req: WorkloadRequest = { csr, identities: [ID], ttlSeconds: 60, now, ...c };
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e;
      }
      assert.fail('expected an error');
    };
    const a = err(() => issueWorkloadCertificateLibrary(signer, req)) as Error & { reason: string; code: string };
    const b = err(() => issueWorkloadCertificate(signer, req)) as Error & { reason: string; code: string };
    assert.deepEqual([b.code, b.reason, b.message], [a.code, a.reason, a.message]);
  }
});

test('sec1Scalar reads the CA scalar from SEC1 DER exactly as the JWK export has it, padded, and only on the named curve', () => {
  for (const [curve, oid, size, other] of [
    ['prime256v1', OID.prime256v1, 32, OID.secp384r1],
    ['secp384r1', OID.secp384r1, 48, OID.prime256v1],
  ] as const) {
    for (let i = 0; i < 400; i++) {
      const { privateKey } = generateKeyPairWith('ec', { namedCurve: curve });
      const der = privateKey.export({ format: 'der', type: 'sec1' });
      const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
      assert.deepEqual(sec1Scalar(der, oid, size), d);
      assert.equal(sec1Scalar(der, other, size), undefined);
    }
  }
  // A scalar OpenSSL wrote short (as some encoders do) is left-padded: strip one leading octet by hand.
  const { privateKey } = generateKeyPair('ec-p256');
  const der = privateKey.export({ format: 'der', type: 'sec1' });
  const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const short = Buffer.concat([der.subarray(0, 5), Buffer.from([0x04, 31]), d.subarray(1), der.subarray(7 + 32)]);
  short[1] = der[1] - 1;
  const want = Buffer.concat([Buffer.alloc(1), d.subarray(1)]);
  assert.deepEqual(sec1Scalar(short, OID.prime256v1, 32), want);
});
