import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { createCsr, parseCsr } from '../csr.js';
import { MeshcaError } from '../errors.js';
import { generateKeyPair, generateKeyPairWith } from '../keys.js';
import { encodeTlv } from './der.js';
import { parseCsrFast } from './index.js';
import { HASH_ID, NATIVE_PATH, native, nativeStatus } from './native.js';

const compilerHere = spawnSync('cc', ['--version']).status === 0;
const disabled = ['0', 'off', 'false'].includes(process.env.MESHCA_NATIVE ?? '');

test('the native checks are built and loaded wherever a C compiler exists (npm ci / npm test build them)', () => {
  if (disabled) {
    assert.equal(native, undefined);
    assert.match(nativeStatus, /^off/);
    return;
  }
  if (compilerHere) {
    assert.ok(native, `native module should load from ${NATIVE_PATH}: ${nativeStatus}`);
    assert.equal(nativeStatus, 'loaded');
  } else {
    assert.equal(native === undefined, nativeStatus !== 'loaded');
  }
});

const nat = () => {
  assert.ok(native, 'native module not loaded');
  return native;
};

function ecPoint(pub: KeyObject): Buffer {
  const jwk = pub.export({ format: 'jwk' });
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
}

/** The DER ECDSA signature re-encoded with a superfluous leading zero in r: BER, not DER. */
function berSignature(der: Buffer): Buffer {
  const r0 = 2; // SEQUENCE header is two octets for P-256/P-384 signatures
  const rLen = der[r0 + 1];
  const r = der.subarray(r0 + 2, r0 + 2 + rLen);
  const rest = der.subarray(r0 + 2 + rLen);
  return encodeTlv(0x30, encodeTlv(0x02, Buffer.concat([Buffer.from([0]), r])), rest);
}

test(
  'ecVerify agrees with node:crypto on valid, altered, truncated and non-DER signatures, P-256 and P-384, every hash',
  { skip: disabled },
  () => {
    const n = nat();
    let cases = 0;
    for (const [curve, id] of [
      ['P-256', 0],
      ['P-384', 1],
    ] as const) {
      for (let i = 0; i < 12; i++) {
        const { publicKey, privateKey } = generateKeyPairWith('ec', { namedCurve: curve });
        const point = ecPoint(publicKey);
        for (const hash of ['sha256', 'sha384', 'sha512']) {
          const data = randomBytes(64 + i * 17);
          const sig = sign(hash, data, privateKey);
          const flipped = Buffer.from(sig);
          flipped[flipped.length - 1] ^= 1;
          const otherData = Buffer.from(data);
          otherData[3] ^= 0x40;
          const variants: Array<[Buffer, Buffer]> = [
            [data, sig],
            [otherData, sig],
            [data, flipped],
            [data, sig.subarray(0, sig.length - 1)],
            [data, Buffer.alloc(0)],
            [data, berSignature(sig)],
            [data, Buffer.concat([sig, Buffer.from([0])])],
          ];
          for (const [d, s] of variants) {
            const expected = verify(hash, d, publicKey, s);
            assert.equal(n.ecVerify(id, point, HASH_ID[hash], d, s), expected ? 1 : 0, `${curve} ${hash} case ${cases}`);
            cases++;
          }
          // A signature by another key does not verify.
          const other = generateKeyPairWith('ec', { namedCurve: curve }).privateKey;
          assert.equal(n.ecVerify(id, point, HASH_ID[hash], data, sign(hash, data, other)), 0);
        }
      }
    }
    assert.ok(cases > 400);
  },
);

test('points off the curve, of the wrong length or not uncompressed are refused', { skip: disabled }, () => {
  const n = nat();
  const { publicKey, privateKey } = generateKeyPair('ec-p256');
  const point = ecPoint(publicKey);
  const data = randomBytes(100);
  const sig = sign('sha256', data, privateKey);
  assert.equal(n.ecPointValid(0, point), true);
  const off = Buffer.from(point);
  off[64] ^= 1; // y changed: no longer on the curve
  assert.equal(n.ecPointValid(0, off), false);
  assert.equal(n.ecVerify(0, off, 0, data, sig), -1);
  assert.equal(n.ecPointValid(1, point), false, 'a P-256 point is not a P-384 point');
  assert.equal(n.ecPointValid(0, point.subarray(0, 64)), false);
  const compressedTag = Buffer.from(point);
  compressedTag[0] = 2;
  assert.equal(n.ecPointValid(0, compressedTag), false);
  // x beyond the field prime: all-ones coordinates.
  assert.equal(n.ecPointValid(0, Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 0xff)])), false);
  assert.equal(n.ecPointValid(0, Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 0)])), false);
});

test('rsaVerify agrees with node:crypto, including a signature of the wrong length and the wrong hash', { skip: disabled }, () => {
  const n = nat();
  for (const bits of [2048, 3072]) {
    const { publicKey, privateKey } = generateKeyPairWith('rsa', { modulusLength: bits });
    const jwk = publicKey.export({ format: 'jwk' });
    const mod = Buffer.from(jwk.n!, 'base64url');
    const exp = Buffer.from(jwk.e!, 'base64url');
    for (const hash of ['sha256', 'sha384', 'sha512']) {
      const data = randomBytes(200);
      const sig = sign(hash, data, privateKey);
      const flipped = Buffer.from(sig);
      flipped[10] ^= 1;
      for (const [h, d, s] of [
        [hash, data, sig],
        [hash, randomBytes(200), sig],
        [hash, data, flipped],
        [hash, data, sig.subarray(1)],
        [hash, data, Buffer.concat([Buffer.from([0]), sig])],
        [hash === 'sha256' ? 'sha384' : 'sha256', data, sig],
      ] as Array<[string, Buffer, Buffer]>) {
        let expected: boolean;
        try {
          expected = verify(h, d, publicKey, s);
        } catch {
          expected = false;
        }
        assert.equal(n.rsaVerify(mod, exp, HASH_ID[h], d, s), expected ? 1 : 0, `${bits} ${hash} as ${h}`);
      }
    }
  }
});

test('bad arguments are a TypeError, not a crash', { skip: disabled }, () => {
  const n = nat() as unknown as Record<string, (...a: unknown[]) => unknown>;
  assert.throws(() => n.ecVerify(2, Buffer.alloc(65), 0, Buffer.alloc(1), Buffer.alloc(1)), TypeError);
  assert.throws(() => n.ecVerify(0, 'not bytes', 0, Buffer.alloc(1), Buffer.alloc(1)), TypeError);
  assert.throws(() => n.ecVerify(0, Buffer.alloc(65), 7, Buffer.alloc(1), Buffer.alloc(1)), TypeError);
  assert.throws(() => n.ecVerify(0, Buffer.alloc(65)), TypeError);
  assert.throws(() => n.rsaVerify(Buffer.alloc(1), Buffer.alloc(1), 0, new Uint16Array(2), Buffer.alloc(1)), TypeError);
  assert.throws(() => n.ecPointValid(0, null), TypeError);
});

test('a CSR whose EC point is off the curve is refused as the library refuses it', () => {
  const { privateKey } = generateKeyPair('ec-p256');
  const der = Buffer.from(createCsr({ key: privateKey, sans: { uris: ['spiffe://cluster.local/ns/a/sa/b'] } }).der);
  const point = ecPoint(createPublicKey(privateKey));
  const at = der.indexOf(point);
  assert.ok(at > 0);
  der[at + 64] ^= 1;
  const reasons = [parseCsrFast, parseCsr].map((f) => {
    try {
      f(der);
      return 'accepted';
    } catch (e) {
      assert.ok(e instanceof MeshcaError, String(e));
      return `${e.reason}: ${e.message}`;
    }
  });
  assert.equal(reasons[0], reasons[1]);
  assert.match(reasons[0], /^bad_public_key: CSR: public key cannot be loaded/);
});

test('the fast parser gives the same key facts and a usable KeyObject on demand', () => {
  for (const [type, opts] of [
    ['ec', { namedCurve: 'P-384' }],
    ['rsa', { modulusLength: 2048 }],
  ] as const) {
    const { privateKey, publicKey } =
      type === 'ec'
        ? generateKeyPairWith('ec', opts as { namedCurve: string })
        : generateKeyPairWith('rsa', opts as { modulusLength: number });
    const csr = createCsr({ key: privateKey, sans: { uris: ['spiffe://cluster.local/ns/a/sa/b'] } });
    const fast = parseCsrFast(csr.der);
    const lib = parseCsr(csr.der);
    assert.deepEqual(fast.keyInfo, lib.keyInfo);
    assert.ok(fast.publicKey.equals(publicKey));
    assert.equal(fast.publicKey, fast.publicKey, 'made once');
  }
});

test('each worker thread gets its own native state', { skip: disabled }, async () => {
  const src = `
    const { parentPort } = require('node:worker_threads');
    const c = require('node:crypto');
    const n = require(${JSON.stringify(NATIVE_PATH)});
    let ok = 0;
    for (let i = 0; i < 50; i++) {
      const k = c.generateKeyPairSync('ec', { namedCurve: i % 2 ? 'P-384' : 'P-256' });
      const spki = k.publicKey.export({ format: 'der', type: 'spki' });
      const pt = spki.subarray(spki.length - (i % 2 ? 97 : 65));
      const d = c.randomBytes(50);
      if (n.ecVerify(i % 2, pt, 0, d, c.sign('sha256', d, k.privateKey)) === 1) ok++;
    }
    parentPort.postMessage(ok);`;
  const results = await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise<number>((resolve, reject) => {
          const w = new Worker(src, { eval: true });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  assert.deepEqual(results, [50, 50, 50]);
});

test('with MESHCA_NATIVE=0 the fast-path tests pass on node:crypto alone', { skip: disabled }, () => {
  const files = ['csr.test.js', 'fuzz.test.js', 'differential.test.js'].map((f) => new URL(f, import.meta.url).pathname);
  const env: NodeJS.ProcessEnv = { ...process.env, MESHCA_NATIVE: '0' };
  delete env.NODE_TEST_CONTEXT; // else the child reports to this runner instead of printing TAP
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', ...files], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /# fail 0/);
  assert.match(r.stdout, /# pass [1-9]/);
});

test('ecSign makes signatures node:crypto accepts, fresh each time; bad private scalars are refused', { skip: disabled }, () => {
  const n = nat();
  for (const [curve, id, size] of [
    ['P-256', 0, 32],
    ['P-384', 1, 48],
  ] as const) {
    const { publicKey, privateKey } = generateKeyPairWith('ec', { namedCurve: curve });
    const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
    const signer = n.ecSignerNew(id, d);
    for (const hash of ['sha256', 'sha384', 'sha512']) {
      const data = randomBytes(500);
      const a = n.ecSign(signer, HASH_ID[hash], data);
      const b = n.ecSign(signer, HASH_ID[hash], data);
      assert.ok(verify(hash, data, publicKey, a) && verify(hash, data, publicKey, b), `${curve} ${hash}`);
      assert.notDeepEqual(a, b, 'a fresh nonce per signature');
      assert.equal(verify(hash, randomBytes(500), publicKey, a), false);
    }
    // The order n of the curve: 0, n and anything of the wrong length are not private keys.
    const order = {
      'P-256': 'ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551',
      'P-384': 'ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973',
    }[curve];
    for (const bad of [Buffer.alloc(size), Buffer.from(order, 'hex'), Buffer.alloc(size, 0xff), d.subarray(1)]) {
      assert.throws(() => n.ecSignerNew(id, bad), /not a valid private key/);
    }
  }
  assert.throws(() => (n.ecSign as (...a: unknown[]) => unknown)({}, 0, Buffer.alloc(1)), TypeError);
});
