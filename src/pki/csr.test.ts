import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { opensslOk } from '../../test/helpers/openssl.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { createCsr, parseCsr } from './csr.js';
import { generateKeyPair, keyMatches } from './keys.js';
import { decodePemBlocks, encodePem } from './pem.js';

const ID = 'spiffe://cluster.local/ns/default/sa/web';

/** Flips one bit in the signature (the last byte of the DER), leaving the structure intact. */
function corruptSignature(pem: string): string {
  const der = Buffer.from(decodePemBlocks(pem)[0].der);
  der[der.length - 1] ^= 0x01;
  return encodePem('CERTIFICATE REQUEST', der);
}

describe('CSR', () => {
  for (const alg of ['ec-p256', 'ec-p384', 'rsa-2048'] as const) {
    it(`${alg}: created CSRs parse back with their key, SANs and verified signature`, () => {
      const kp = generateKeyPair(alg);
      const csr = createCsr({ key: kp.privateKey, sans: { uris: [ID], dnsNames: ['web.default.svc'] } });
      assert.match(csr.pem, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
      const p = parseCsr(csr.pem);
      assert.equal(p.subjectEmpty, true);
      assert.deepEqual(p.sans.uris, [ID]);
      assert.deepEqual(p.sans.dnsNames, ['web.default.svc']);
      assert.equal(p.requestsCA, false);
      assert.equal(keyMatches(kp.privateKey, p.publicKey), true);
      assert.deepEqual(p.requestedExtensions, ['2.5.29.17']);
      // The same request as DER parses identically.
      assert.deepEqual(parseCsr(csr.der).spkiDer, p.spkiDer);
    });
  }

  it('carries a subject and the CA request for intermediate CSRs', () => {
    const kp = generateKeyPair('ec-p256');
    const p = parseCsr(createCsr({ key: kp.privateKey, subject: { organization: ['Istio'], commonName: 'east' }, isCA: true }).pem);
    assert.equal(p.subject, 'O = Istio, CN = east');
    assert.equal(p.subjectEmpty, false);
    assert.equal(p.requestsCA, true);
  });

  it('is readable by openssl, which verifies its signature', () => {
    const t = tempDir();
    try {
      const kp = generateKeyPair('ec-p256');
      const file = join(t.path, 'req.pem');
      writeFileSync(file, createCsr({ key: kp.privateKey, sans: { uris: [ID] } }).pem);
      const out = opensslOk(['req', '-in', file, '-noout', '-verify', '-text']);
      assert.match(out, /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/web/);
    } finally {
      t.cleanup();
    }
  });

  it('rejects a request whose signature does not verify', () => {
    const kp = generateKeyPair('ec-p256');
    const bad = corruptSignature(createCsr({ key: kp.privateKey, sans: { uris: [ID] } }).pem);
    assert.throws(() => parseCsr(bad), {
      reason: 'bad_csr_signature',
      message: "CSR: signature does not verify with the request's own public key",
    });
  });

  it('rejects RSA-1024 and P-521 requests made by openssl, naming the key problem', () => {
    const t = tempDir();
    try {
      const rsa = join(t.path, 'rsa.csr');
      opensslOk(['req', '-new', '-newkey', 'rsa:1024', '-nodes', '-keyout', join(t.path, 'rsa.key'), '-subj', '/CN=weak', '-out', rsa]);
      assert.throws(() => parseCsr(readFileSync(rsa, 'utf8')), {
        reason: 'weak_key',
        message: 'CSR: RSA key of 1024 bits is below the 2048-bit minimum',
      });
      const ec = join(t.path, 'ec.csr');
      opensslOk([
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-521',
        '-nodes',
        '-keyout',
        join(t.path, 'ec.key'),
        '-subj',
        '/CN=p521',
        '-out',
        ec,
      ]);
      assert.throws(() => parseCsr(readFileSync(ec, 'utf8')), {
        reason: 'bad_curve',
        message: 'CSR: elliptic curve P-521 is not accepted; use P-256 or P-384',
      });
    } finally {
      t.cleanup();
    }
  });

  it('accepts an openssl-made request with a SPIFFE URI SAN', () => {
    const t = tempDir();
    try {
      const file = join(t.path, 'ok.csr');
      opensslOk([
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(t.path, 'ok.key'),
        '-subj',
        '/O=x',
        '-addext',
        `subjectAltName=URI:${ID}`,
        '-out',
        file,
      ]);
      assert.deepEqual(parseCsr(readFileSync(file, 'utf8')).sans.uris, [ID]);
    } finally {
      t.cleanup();
    }
  });

  it('names garbage inputs', () => {
    assert.throws(() => parseCsr('hello'), {
      reason: 'bad_pem',
      message: 'CSR: no PEM block labelled "CERTIFICATE REQUEST" or "NEW CERTIFICATE REQUEST" found',
    });
    assert.throws(() => parseCsr(Buffer.from('3003020100', 'hex')), {
      reason: 'malformed_csr',
      message: 'CSR: not a valid PKCS#10 certificate request (DER does not parse)',
    });
    assert.throws(() => parseCsr('-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----\n'), {
      reason: 'bad_pem',
      message: 'PEM block "CERTIFICATE REQUEST" has an invalid base64 body',
    });
  });
});
