import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, randomBytes, randomInt } from 'node:crypto';
import { createCsr } from '../csr.js';
import { issueWorkloadCertificate, issueWorkloadCertificateLibrary } from '../issue.js';
import { generateKeyPair } from '../keys.js';
import { randomSerial } from '../profiles.js';
import { makeSigner, tbsOf } from './testing.js';

const RUNS = 200;

test(`randomized differential: ${RUNS} CSRs through both paths give identical TBS bytes`, () => {
  const base = new Date('2031-06-15T12:00:00Z');
  const signers = [
    makeSigner('ec-p256', base),
    makeSigner('rsa-2048', base),
    makeSigner('ec-p384', base, { root: 3650, intermediate: 30 }),
  ];
  // RSA keys are slow to make: a few, reused with distinct SANs.
  const rsaKeys = Array.from({ length: 4 }, () => generateKeyPair('rsa-2048').privateKey);
  for (let i = 0; i < RUNS; i++) {
    const key = i % 2 === 0 ? generateKeyPair('ec-p256').privateKey : rsaKeys[i % rsaKeys.length];
    const ids = Array.from(
      { length: 1 + randomInt(3) },
      (_, k) => `spiffe://td-${randomInt(1000)}.local/ns/n${i}/sa/s${k}-${randomBytes(randomInt(1, 40)).toString('hex')}`,
    );
    // Half the requests name one of the caller's identities (an SVID carries exactly one); the
    // others rely on the caller's primary identity.
    const csr = createCsr({
      key,
      sans: i % 4 < 2 ? { uris: [ids[randomInt(ids.length)]] } : {},
      subject: i % 3 === 0 ? { commonName: `w${i}` } : undefined,
    });
    const signer = signers[randomInt(signers.length)];
    const req = {
      csr: i % 5 === 0 ? csr.der : csr.pem,
      identities: ids,
      ttlSeconds: 1 + randomInt(90 * 86_400),
      now: new Date(base.getTime() + randomInt(20 * 86_400_000)),
      serial: randomSerial(),
    };
    const lib = issueWorkloadCertificateLibrary(signer, req);
    const fast = issueWorkloadCertificate(signer, req);
    assert.deepEqual(tbsOf(fast.certDer), tbsOf(lib.certDer), `request ${i}`);
    assert.equal(fast.serialHex, lib.serialHex);
    assert.deepEqual([fast.notBefore, fast.notAfter, fast.sans, fast.keyInfo], [lib.notBefore, lib.notAfter, lib.sans, lib.keyInfo]);
    if (i % 20 === 0) assert.ok(new X509Certificate(fast.certDer).verify(signer.cert.publicKey));
  }
});
