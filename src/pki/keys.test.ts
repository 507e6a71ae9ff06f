import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  KEY_ALGORITHMS,
  checkKeyPolicy,
  describeKey,
  generateKeyPair,
  generateKeyPairAsync,
  generateKeyPairWith,
  keyMatches,
  parseKeyAlgorithm,
  parsePrivateKeyPem,
  privateKeyToPem,
  publicKeyFromSpki,
  signData,
  signatureAlgorithmFor,
  spkiDer,
  verifyData,
} from './keys.js';
import { OID } from './oids.js';

const EXPECTED: Record<string, { label: string; bits: number; sig: string }> = {
  'ec-p256': { label: 'EC P-256', bits: 256, sig: 'ecdsa-with-SHA256' },
  'ec-p384': { label: 'EC P-384', bits: 384, sig: 'ecdsa-with-SHA384' },
  'rsa-2048': { label: 'RSA 2048', bits: 2048, sig: 'sha256WithRSAEncryption' },
  'rsa-3072': { label: 'RSA 3072', bits: 3072, sig: 'sha256WithRSAEncryption' },
  'rsa-4096': { label: 'RSA 4096', bits: 4096, sig: 'sha256WithRSAEncryption' },
};

describe('keys', () => {
  for (const alg of KEY_ALGORITHMS) {
    it(`${alg}: generates, describes, passes policy, signs and round-trips PEM`, () => {
      const kp = generateKeyPair(alg);
      const info = describeKey(kp.publicKey);
      assert.equal(info.label, EXPECTED[alg].label);
      assert.equal(info.bits, EXPECTED[alg].bits);
      checkKeyPolicy(info, alg);
      const sigAlg = signatureAlgorithmFor(kp.privateKey);
      assert.equal(sigAlg.name, EXPECTED[alg].sig);
      const data = Buffer.from('to be signed');
      const sig = signData(sigAlg, kp.privateKey, data);
      assert.equal(verifyData(sigAlg.oid, kp.publicKey, data, sig), true);
      assert.equal(verifyData(sigAlg.oid, kp.publicKey, Buffer.from('tampered'), sig), false);
      const back = parsePrivateKeyPem(privateKeyToPem(kp.privateKey));
      assert.equal(keyMatches(back, kp.publicKey), true);
      // The SPKI passes the same policy when read back from DER, as a CSR's would.
      assert.equal(describeKey(publicKeyFromSpki(spkiDer(kp.publicKey), alg)).label, EXPECTED[alg].label);
    });
  }

  it('parses algorithm names case-insensitively and lists the choices for unknown ones', () => {
    assert.equal(parseKeyAlgorithm('EC-P256'), 'ec-p256');
    assert.throws(
      () => parseKeyAlgorithm('ed25519'),
      /unknown key algorithm "ed25519"; use one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096/,
    );
  });

  it('rejects RSA-1024 as below the 2048-bit minimum', () => {
    const { publicKey } = generateKeyPairWith('rsa', { modulusLength: 1024 });
    assert.throws(() => checkKeyPolicy(describeKey(publicKey), 'test key'), {
      name: 'MeshcaError',
      reason: 'weak_key',
      message: 'test key: RSA key of 1024 bits is below the 2048-bit minimum',
    });
  });

  it('rejects P-521 both as a key and inside an SPKI', () => {
    const { publicKey } = generateKeyPairWith('ec', { namedCurve: 'secp521r1' });
    assert.throws(() => checkKeyPolicy(describeKey(publicKey), 'test key'), {
      reason: 'bad_curve',
      message: 'test key: elliptic curve P-521 is not accepted; use P-256 or P-384',
    });
    assert.throws(() => publicKeyFromSpki(spkiDer(publicKey), 'CSR'), {
      message: 'CSR: elliptic curve P-521 is not accepted; use P-256 or P-384',
    });
  });

  it('rejects Ed25519 keys as unsupported', () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    assert.throws(() => describeKey(publicKey), /unsupported key type "ed25519"/);
    assert.throws(
      () => publicKeyFromSpki(spkiDer(publicKey), 'CSR'),
      new RegExp(`CSR: public key algorithm ${OID.ed25519.replace(/\./g, '\\.')} is not supported`),
    );
  });

  it('detects a key that does not belong to a public key', () => {
    const a = generateKeyPair('ec-p256');
    const b = generateKeyPair('ec-p256');
    assert.equal(keyMatches(a.privateKey, b.publicKey), false);
  });

  it('never treats an unknown signature algorithm as valid, nor a key of the wrong family', () => {
    const kp = generateKeyPair('ec-p256');
    assert.throws(
      () => verifyData(OID.sha1WithRSA, kp.publicKey, Buffer.alloc(1), Buffer.alloc(1)),
      /signature algorithm 1\.2\.840\.113549\.1\.1\.5 is not supported/,
    );
    const sig = signData(signatureAlgorithmFor(kp.privateKey), kp.privateKey, Buffer.from('x'));
    assert.equal(verifyData(OID.sha256WithRSA, kp.publicKey, Buffer.from('x'), sig), false);
  });

  it('names encrypted and unreadable private keys', () => {
    const kp = generateKeyPair('ec-p256');
    const enc = kp.privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'pw' }) as string;
    assert.throws(() => parsePrivateKeyPem(enc, 'ca-key.pem'), {
      reason: 'encrypted_key',
      message: 'ca-key.pem: the key is encrypted and no valid passphrase was given',
    });
    assert.equal(keyMatches(parsePrivateKeyPem(enc, 'ca-key.pem', 'pw'), kp.publicKey), true);
    assert.throws(() => parsePrivateKeyPem('garbage', 'ca-key.pem'), {
      reason: 'bad_private_key',
      message: 'ca-key.pem: not a readable PEM private key',
    });
  });

  it('describes keys from their SPKI and never asks Node for asymmetricKeyDetails, which can deadlock Node 20', () => {
    const keys = [
      generateKeyPairWith('ec', { namedCurve: 'prime256v1' }),
      generateKeyPairWith('ec', { namedCurve: 'secp384r1' }),
      generateKeyPairWith('ec', { namedCurve: 'secp521r1' }),
      generateKeyPairWith('ec', { namedCurve: 'secp256k1' }),
      generateKeyPairWith('rsa', { modulusLength: 1024 }),
      generateKeyPairWith('rsa', { modulusLength: 2047 }),
      generateKeyPairWith('rsa', { modulusLength: 2048 }),
      generateKeyPairWith('rsa', { modulusLength: 3072 }),
    ];
    // Node's own view, read before the property is poisoned.
    const want = keys.map((k) => ({ ...k.publicKey.asymmetricKeyDetails }));
    const proto = Object.getPrototypeOf(keys[0].publicKey) as object;
    const owner = [proto, Object.getPrototypeOf(proto) as object].find((o) => Object.getOwnPropertyDescriptor(o, 'asymmetricKeyDetails'));
    assert.ok(owner, 'KeyObject prototype defines asymmetricKeyDetails');
    const saved = Object.getOwnPropertyDescriptor(owner, 'asymmetricKeyDetails')!;
    Object.defineProperty(owner, 'asymmetricKeyDetails', {
      configurable: true,
      get() {
        throw new Error('asymmetricKeyDetails was read');
      },
    });
    try {
      const curves: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };
      keys.forEach((kp, i) => {
        for (const key of [kp.publicKey, kp.privateKey]) {
          const info = describeKey(key);
          if (want[i].modulusLength !== undefined) {
            assert.deepEqual(info, { family: 'rsa', bits: want[i].modulusLength, label: `RSA ${want[i].modulusLength}` });
          } else {
            const curve = curves[want[i].namedCurve!] ?? '1.3.132.0.10'; // secp256k1 has no name of ours
            assert.equal(info.family, 'ec');
            assert.equal(info.curve, curve, `curve of ${want[i].namedCurve}`);
          }
        }
      });
      // The policy still turns away what it did before.
      assert.throws(() => checkKeyPolicy(describeKey(keys[2].publicKey), 'k'), { reason: 'bad_curve' });
      assert.throws(() => checkKeyPolicy(describeKey(keys[3].publicKey), 'k'), { reason: 'bad_curve' });
      assert.throws(() => checkKeyPolicy(describeKey(keys[4].publicKey), 'k'), { reason: 'weak_key' });
      assert.throws(() => checkKeyPolicy(describeKey(keys[5].publicKey), 'k'), { reason: 'weak_key' });
      // Key generation reads nothing from the generated key either.
      for (const alg of ['ec-p256', 'ec-p384'] as const)
        assert.equal(describeKey(generateKeyPair(alg).privateKey).label, EXPECTED[alg].label);
    } finally {
      Object.defineProperty(owner, 'asymmetricKeyDetails', saved);
    }
  });

  it('generates keys parsed from their DER encodings that match each other, synchronously and on the thread pool', async () => {
    for (const alg of ['ec-p256', 'rsa-2048'] as const) {
      for (const kp of [generateKeyPair(alg), await generateKeyPairAsync(alg)]) {
        assert.equal(kp.privateKey.type, 'private');
        assert.equal(kp.publicKey.type, 'public');
        assert.equal(keyMatches(kp.privateKey, kp.publicKey), true);
        assert.equal(describeKey(kp.publicKey).label, EXPECTED[alg].label);
        // Node's details agree with ours.
        const d = kp.publicKey.asymmetricKeyDetails!;
        assert.equal(alg === 'ec-p256' ? d.namedCurve : d.modulusLength, alg === 'ec-p256' ? 'prime256v1' : 2048);
      }
    }
    const a = generateKeyPair('ec-p256');
    const b = generateKeyPair('ec-p256');
    assert.equal(keyMatches(a.privateKey, b.publicKey), false);
  });
});
