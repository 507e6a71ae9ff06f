import assert from 'node:assert/strict';

import { describe, it } from 'node:test';
import {
  DAY,
  NOW,
  daysFrom,
  extensionCriticality,
  makeCustom,
  makeIntermediate,
  makeLeaf,
  makeRoot,
  serialOctets,
} from '../../test/helpers/pki.js';
import { parseCertificate } from './certificate.js';
import { generateKeyPair, generateKeyPairWith, keyIdentifier } from './keys.js';
import { OID } from './oids.js';
import {
  createIntermediateCertificate,
  createLeafCertificate,
  createRootCertificate,
  DEFAULT_BACKDATE_SECONDS,
  randomSerial,
} from './profiles.js';

const BACKDATE_MS = DEFAULT_BACKDATE_SECONDS * 1000;

describe('root profile', () => {
  const root = makeRoot();
  const c = root.cert;

  it('is a self-signed CA with critical basicConstraints and keyUsage, and an SKI', () => {
    assert.equal(c.selfIssued, true);
    assert.equal(c.node.verify(c.publicKey), true);
    assert.deepEqual(c.ext.basicConstraints, { ca: true, pathLen: undefined, critical: true });
    assert.deepEqual(c.ext.keyUsage, { usages: ['keyCertSign', 'cRLSign'], critical: true });
    assert.equal(c.ext.subjectKeyId, keyIdentifier(c.publicKey).toString('hex'));
    assert.equal(c.ext.authorityKeyId, undefined);
    assert.equal(c.ext.extKeyUsage, undefined);
    assert.equal(c.ext.san, undefined);
    assert.deepEqual(
      [...extensionCriticality(c.der)],
      [
        [OID.basicConstraints, true],
        [OID.keyUsage, true],
        [OID.subjectKeyIdentifier, false],
      ],
    );
  });

  it('back-dates NotBefore and lasts the requested days', () => {
    assert.equal(c.notBefore.getTime(), NOW.getTime() - BACKDATE_MS);
    assert.equal(c.notAfter.getTime(), daysFrom(NOW, 3650).getTime());
  });

  it("defaults to Istio's self-signed root subject O=cluster.local and takes a pathlen", () => {
    const kp = generateKeyPair('ec-p256');
    const r = createRootCertificate({ key: kp.privateKey, now: NOW, pathLen: 1 });
    assert.equal(r.subject, 'O = cluster.local');
    assert.equal(r.ext.basicConstraints?.pathLen, 1);
    assert.equal(r.notAfter.getTime(), daysFrom(NOW, 3650).getTime());
  });

  it('refuses weak keys and non-positive lifetimes', () => {
    const weak = generateKeyPairWith('rsa', { modulusLength: 1024 });
    assert.throws(
      () => createRootCertificate({ key: weak.privateKey, now: NOW }),
      /root key: RSA key of 1024 bits is below the 2048-bit minimum/,
    );
    assert.throws(() => createRootCertificate({ key: root.key, now: NOW, days: 0 }), /root lifetime must be positive, got 0 days/);
  });
});

describe('intermediate profile', () => {
  const root = makeRoot();
  const int = makeIntermediate(root, { days: 365 });
  const c = int.cert;

  it('is a CA with pathlen 0, critical basicConstraints and keyUsage, SKI and AKI linked to the root', () => {
    assert.equal(c.issuer, root.cert.subject);
    assert.equal(c.node.verify(root.cert.publicKey), true);
    assert.deepEqual(c.ext.basicConstraints, { ca: true, pathLen: 0, critical: true });
    assert.deepEqual(c.ext.keyUsage, { usages: ['digitalSignature', 'keyCertSign', 'cRLSign'], critical: true });
    assert.equal(c.ext.subjectKeyId, keyIdentifier(c.publicKey).toString('hex'));
    assert.equal(c.ext.authorityKeyId, root.cert.ext.subjectKeyId);
    assert.deepEqual(
      [...extensionCriticality(c.der)],
      [
        [OID.basicConstraints, true],
        [OID.keyUsage, true],
        [OID.subjectKeyIdentifier, false],
        [OID.authorityKeyIdentifier, false],
      ],
    );
    assert.equal(int.clamped, false);
    assert.equal(c.notBefore.getTime(), NOW.getTime() - BACKDATE_MS);
    assert.equal(c.notAfter.getTime(), daysFrom(NOW, 365).getTime());
  });

  it("clamps NotAfter to the root's and says so", () => {
    const shortRoot = makeRoot({ days: 30 });
    const r = makeIntermediate(shortRoot, { days: 365 });
    assert.equal(r.clamped, true);
    assert.equal(r.cert.notAfter.getTime(), shortRoot.cert.notAfter.getTime());
  });

  it("never starts before the root's NotBefore", () => {
    // Back-dating from 30 s after the root's start would reach 30 s before it.
    const r = makeIntermediate(root, { now: new Date(NOW.getTime() - 30_000) });
    assert.equal(r.cert.notBefore.getTime(), root.cert.notBefore.getTime());
  });

  it('refuses pathlen beyond what the issuer allows, and issuers that cannot sign CAs', () => {
    const p1 = makeRoot({ pathLen: 1 });
    assert.equal(makeIntermediate(p1, { pathLen: 0 }).cert.ext.basicConstraints?.pathLen, 0);
    assert.throws(() => makeIntermediate(p1, { pathLen: 1 }), /requested pathlen 1 but issuer "Test Root" \(pathlen 1\) allows at most 0/);
    assert.throws(() => makeIntermediate(int), /issuer "Test Intermediate" has pathlen 0 and cannot sign another CA/);
    const leaf = makeLeaf(int);
    assert.throws(() => makeIntermediate(leaf), /is not a CA \(basicConstraints CA:FALSE or missing\)/);
    const noSign = makeCustom({ cn: 'No Sign', keyUsage: ['digitalSignature'] });
    assert.throws(() => makeIntermediate(noSign), /issuer "No Sign" lacks the keyCertSign key usage/);
    assert.throws(() => makeIntermediate(root, { now: daysFrom(NOW, 4000) }), /issuer "Test Root" expired at/);
    assert.throws(() => makeIntermediate(root, { now: daysFrom(NOW, -1) }), /issuer "Test Root" is not valid before/);
  });

  it('refuses an empty subject and bad lifetimes', () => {
    const kp = generateKeyPair('ec-p256');
    const base = { issuerCert: root.cert, issuerKey: root.key, publicKey: kp.publicKey, now: NOW };
    assert.throws(() => createIntermediateCertificate({ ...base, subject: {}, days: 1 }), /intermediate subject must not be empty/);
    assert.throws(
      () => createIntermediateCertificate({ ...base, subject: { commonName: 'x' }, days: -1 }),
      /intermediate lifetime must be positive/,
    );
    assert.throws(
      () => createIntermediateCertificate({ ...base, subject: { commonName: 'x' }, days: 1, pathLen: -1 }),
      /pathlen must be a non-negative integer/,
    );
  });
});

describe('leaf profile', () => {
  const root = makeRoot();
  const int = makeIntermediate(root, { days: 30 });
  const leaf = makeLeaf(int, { ttlSeconds: 86_400 });
  const c = leaf.cert;

  it('is an end entity with the Istio workload extensions and their criticality', () => {
    assert.equal(c.subject, '');
    assert.equal(c.issuer, int.cert.subject);
    assert.equal(c.node.verify(int.cert.publicKey), true);
    assert.deepEqual(c.ext.basicConstraints, { ca: false, pathLen: undefined, critical: true });
    assert.deepEqual(c.ext.keyUsage, { usages: ['digitalSignature', 'keyEncipherment'], critical: true });
    assert.deepEqual([...(c.ext.extKeyUsage?.usages ?? [])], ['serverAuth', 'clientAuth']);
    assert.equal(c.ext.extKeyUsage?.critical, false);
    assert.deepEqual(c.ext.san?.uris, ['spiffe://cluster.local/ns/default/sa/web']);
    // RFC 5280 4.2.1.6: the SAN must be critical when the subject is empty.
    assert.equal(c.ext.san?.critical, true);
    assert.equal(c.ext.authorityKeyId, int.cert.ext.subjectKeyId);
    assert.equal(c.ext.subjectKeyId, undefined);
    assert.deepEqual(
      [...extensionCriticality(c.der)],
      [
        [OID.basicConstraints, true],
        [OID.keyUsage, true],
        [OID.extKeyUsage, false],
        [OID.subjectAltName, true],
        [OID.authorityKeyIdentifier, false],
      ],
    );
  });

  it('back-dates NotBefore by a minute and ends after the TTL', () => {
    assert.equal(c.notBefore.getTime(), NOW.getTime() - BACKDATE_MS);
    assert.equal(c.notAfter.getTime(), NOW.getTime() + DAY);
  });

  it("clamps NotAfter to the issuer's", () => {
    const long = makeLeaf(int, { ttlSeconds: 90 * 86_400 });
    assert.equal(long.cert.notAfter.getTime(), int.cert.notAfter.getTime());
  });

  it('has a random positive serial of at least 16 octets, distinct across 100 certificates', () => {
    const serials = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const der = makeLeaf(int).cert.der;
      const octets = serialOctets(der);
      assert.ok(octets.length >= 16 && octets.length <= 17, `serial of ${octets.length} octets`);
      assert.equal(octets[0] & 0x80, 0, 'serial must be positive');
      // Minimal DER: a leading zero octet only to keep a high bit positive.
      if (octets[0] === 0) assert.ok(octets[1] & 0x80);
      serials.add(octets.toString('hex'));
    }
    assert.equal(serials.size, 100);
  });

  it('encodes serials validly whatever the random bytes (leading zero, high bit, all zero)', () => {
    const fixed = (hex: string) => () => Buffer.from(hex, 'hex');
    const cases: [string, string][] = [
      ['00'.padEnd(32, '11'), '01'.padEnd(32, '11')],
      ['ff'.padEnd(32, '22'), '00ff'.padEnd(34, '22')],
      ['00'.repeat(16), '01'.padEnd(32, '0')],
    ];
    for (const [random, want] of cases) {
      const serial = randomSerial(fixed(random));
      assert.equal(serial.toString('hex'), want);
      // Parsing would throw "illegal padding" on a non-minimal INTEGER.
      const cert = makeLeaf(int, { serial });
      assert.equal(serialOctets(cert.cert.der).toString('hex'), want);
    }
  });

  it('refuses a zero TTL and issuers without keyCertSign', () => {
    const kp = generateKeyPair('ec-p256');
    const base = { issuerKey: int.key, publicKey: kp.publicKey, sans: { uris: ['spiffe://a/b'] }, now: NOW };
    assert.throws(
      () => createLeafCertificate({ ...base, issuerCert: int.cert, ttlSeconds: 0 }),
      /certificate TTL must be positive, got 0s/,
    );
    const noSign = makeCustom({ cn: 'No Sign', keyUsage: ['digitalSignature'] });
    assert.throws(
      () => createLeafCertificate({ ...base, issuerCert: noSign.cert, issuerKey: noSign.key, ttlSeconds: 60 }),
      /lacks the keyCertSign key usage/,
    );
  });

  it('parses back identically from PEM', () => {
    assert.equal(parseCertificate(c.pem).fingerprint256, c.fingerprint256);
  });
});
