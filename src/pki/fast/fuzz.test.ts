import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt, sign, type KeyObject } from 'node:crypto';
import { createCsr, parseCsr } from '../csr.js';
import { MeshcaError } from '../errors.js';
import { issueWorkloadCertificate, issueWorkloadCertificateLibrary, type IssuedCertificate } from '../issue.js';
import { generateKeyPair } from '../keys.js';
import { encodeTlv, readTlv } from './der.js';
import { LIBRARY_DECIDES, parseCsrFast } from './index.js';
import { makeSigner, opensslCsrWithKey, tbsOf } from './testing.js';

const ID = 'spiffe://cluster.local/ns/default/sa/web';
// FUZZ_ROUNDS=20000 for a longer local run.
const ROUNDS = Number(process.env.FUZZ_ROUNDS ?? 400);

type Outcome<T> = { ok: T } | { code: string; reason: string; message: string };

/** Runs the lean code: anything but a MeshcaError (a RangeError from reading past a buffer, say) fails the test. */
function run<T>(f: () => T): Outcome<T> {
  try {
    return { ok: f() };
  } catch (e) {
    if (!(e instanceof MeshcaError)) throw e;
    return { code: e.code, reason: e.reason, message: e.message };
  }
}

/** Runs the library code, which may also fail with plain errors from the ASN.1 library. */
function runLibrary<T>(f: () => T): Outcome<T> {
  try {
    return run(f);
  } catch (e) {
    return { code: 'crash', reason: 'crash', message: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * A request whose CertificationRequestInfo had a few bytes changed and was then signed again, so
 * that the damage reaches the subject, key and extension parsers instead of stopping at the signature.
 */
function mutated(key: KeyObject, hash: string, base: Buffer): Buffer {
  const outer = readTlv(base, 0, base.length);
  const info = readTlv(base, outer.body, outer.end);
  const alg = readTlv(base, info.end, outer.end);
  let body = Buffer.from(base.subarray(info.body, info.end));
  for (let k = 1 + randomInt(3); k > 0; k--) {
    const at = randomInt(body.length);
    const op = randomInt(8);
    if (op === 0) body = Buffer.concat([body.subarray(0, at), body.subarray(at + 1)]);
    else if (op === 1) body = Buffer.concat([body.subarray(0, at), Buffer.from([randomInt(256)]), body.subarray(at)]);
    else body[at] = op === 2 ? randomInt(256) : body[at] ^ (1 << randomInt(8));
  }
  const newInfo = encodeTlv(0x30, body);
  const sig = sign(hash, newInfo, key);
  return encodeTlv(0x30, newInfo, base.subarray(alg.start, alg.end), encodeTlv(0x03, Buffer.from([0]), sig));
}

test(`fuzz: ${ROUNDS} damaged, re-signed requests give the library's verdict on both the parser and issuance`, () => {
  const now = new Date();
  const signer = makeSigner('ec-p256', now);
  const ec = generateKeyPair('ec-p256').privateKey;
  const rsa = generateKeyPair('rsa-2048').privateKey;
  const sans = { uris: [ID], dnsNames: ['a.example'], ipAddresses: ['10.0.0.1'] };
  const bases: [KeyObject, Buffer][] = [
    [ec, createCsr({ key: ec, sans: { uris: [ID] } }).der],
    [ec, createCsr({ key: ec, subject: { commonName: 'w', organization: ['o'] }, sans }).der],
    [ec, createCsr({ key: ec, isCA: true, sans: { uris: [ID] } }).der],
    [rsa, createCsr({ key: rsa, sans: { uris: [ID] } }).der],
  ];
  // Extensions meshca never writes itself: keyUsage, extKeyUsage, otherName, pathlen, IPv6.
  const o = opensslCsrWithKey(
    ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
    [
      '-addext',
      `subjectAltName=URI:${ID},otherName:1.2.3.4;UTF8:x,IP:2001:db8::1`,
      '-addext',
      'keyUsage=critical,digitalSignature',
      '-addext',
      'extendedKeyUsage=clientAuth',
      '-addext',
      'basicConstraints=CA:TRUE,pathlen:2',
    ],
  );
  bases.push([o.key, o.der]);
  let fastAccepted = 0;
  let deferred = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const [key, base] = bases[i % bases.length];
    const der = mutated(key, 'sha256', base);
    const fast = run(() => parseCsrFast(der));
    const lib = runLibrary(() => parseCsr(der));
    if ('ok' in fast) {
      fastAccepted++;
      assert.ok('ok' in lib, `lean parser accepted what the library refuses: ${der.toString('hex')} ${JSON.stringify(lib)}`);
      const { critical: _c, ...libSans } = lib.ok.sans as typeof lib.ok.sans & { critical?: boolean };
      // subjectDer is left out: the lean parser returns the request's bytes, the library its own
      // re-encoding, and the two differ for damaged strings (invalid UTF-8, say).
      assert.deepEqual(
        [fast.ok.sans, fast.ok.requestsCA, fast.ok.requestedExtensions, fast.ok.keyInfo, fast.ok.spkiDer, fast.ok.subjectEmpty],
        [libSans, lib.ok.requestsCA, lib.ok.requestedExtensions, lib.ok.keyInfo, lib.ok.spkiDer, lib.ok.subjectEmpty],
      );
    } else if (LIBRARY_DECIDES.has(fast.reason)) {
      deferred++;
    } else {
      assert.deepEqual(fast, lib, der.toString('hex'));
    }
    // End to end, the fast path must give exactly what the library path gives.
    const req = { csr: der, identities: [ID], ttlSeconds: 600, now, serial: Buffer.from([1, 2, 3]) };
    const view = (o: Outcome<IssuedCertificate>) =>
      'ok' in o ? { tbs: tbsOf(o.ok.certDer).toString('hex'), sans: o.ok.sans, keyInfo: o.ok.keyInfo } : o;
    assert.deepEqual(
      view(runLibrary(() => issueWorkloadCertificate(signer, req))),
      view(runLibrary(() => issueWorkloadCertificateLibrary(signer, req))),
      der.toString('hex'),
    );
  }
  // The mutations must have reached past the structure checks, or the test proves little.
  assert.ok(fastAccepted > ROUNDS / 20, `only ${fastAccepted} mutated requests parsed`);
  assert.ok(deferred < ROUNDS, 'every request was deferred');
});
