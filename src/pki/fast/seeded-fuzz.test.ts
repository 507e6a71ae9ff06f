import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCsr, parseCsr } from '../csr.js';
import { MeshcaError } from '../errors.js';
import { issueWorkloadCertificate, issueWorkloadCertificateLibrary } from '../issue.js';
import { generateKeyPair } from '../keys.js';
import { encodeTlv } from './der.js';
import { parseCsrFast } from './index.js';
import { makeSigner, tbsOf } from './testing.js';
import { prngInt as prng } from '../../../test/helpers/prng.js';

/**
 * Seeded mutation fuzzer for both CSR parsers on unsigned damage (byte flips, truncation, length
 * tampering, deep nesting): only MeshcaError may escape either parser, and issuance gives the same
 * verdict on both paths. MESHCA_FUZZ_SEED and MESHCA_FUZZ_ITERATIONS reproduce or extend a run.
 */
const SEED = Number(process.env.MESHCA_FUZZ_SEED ?? 0x5eed1d);
const ITERATIONS = Number(process.env.MESHCA_FUZZ_ITERATIONS ?? 1500);
const ID = 'spiffe://cluster.local/ns/default/sa/web';

function mutate(rand: (n: number) => number, base: Buffer): Buffer {
  let b = Buffer.from(base);
  for (let k = 1 + rand(3); k > 0; k--) {
    const at = rand(b.length);
    switch (rand(7)) {
      case 0:
        b[at] ^= 1 << rand(8);
        break;
      case 1:
        b[at] = rand(256);
        break;
      case 2:
        b = b.subarray(0, at);
        break;
      case 3:
        // A length octet made long-form or huge.
        b[at] = [0x80, 0x81, 0x84, 0x88, 0xff, 0x7f][rand(6)];
        break;
      case 4:
        b = Buffer.concat([b.subarray(0, at), Buffer.from([0x84, 0xff, 0xff, 0xff, 0xff]), b.subarray(at)]);
        break;
      case 5: {
        // Nested constructed values, deeper than any parser should recurse.
        let inner: Buffer = Buffer.alloc(0);
        for (let d = 0; d < 200 + rand(2000); d++) inner = encodeTlv([0x30, 0x31, 0xa0, 0xa3][rand(4)], inner);
        b = Buffer.concat([b.subarray(0, at), inner, b.subarray(at)]);
        break;
      }
      default:
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rand(8))]);
    }
    if (b.length === 0) break;
  }
  return b;
}

type Verdict = { ok: true; tbs?: string } | { reason: string };

function verdict(what: string, f: () => unknown, seedInfo: string): Verdict {
  try {
    const r = f() as { certDer?: Buffer };
    return { ok: true, tbs: r?.certDer ? tbsOf(r.certDer).toString('hex') : undefined };
  } catch (e) {
    if (!(e instanceof MeshcaError)) assert.fail(`${what} threw ${(e as Error)?.name}: ${(e as Error)?.message} (${seedInfo})`);
    return { reason: e.reason };
  }
}

test(`seeded fuzz: ${ITERATIONS} damaged CSRs, only MeshcaError escapes and both paths agree (seed ${SEED})`, () => {
  const rand = prng(SEED);
  const now = new Date();
  const signer = makeSigner('ec-p256', now);
  const ec = generateKeyPair('ec-p256').privateKey;
  const bases = [
    createCsr({ key: ec, sans: { uris: [ID] } }).der,
    createCsr({ key: ec, subject: { commonName: 'w', organization: ['o'] }, sans: { uris: [ID], dnsNames: ['a.example'] } }).der,
    createCsr({ key: ec, isCA: true, sans: { uris: [ID] } }).der,
  ];
  for (let i = 0; i < ITERATIONS; i++) {
    const der = mutate(rand, bases[i % bases.length]);
    const info = `seed ${SEED} iteration ${i}, MESHCA_FUZZ_SEED=${SEED} to reproduce; input ${der.toString('hex')}`;
    const fast = verdict('parseCsrFast', () => parseCsrFast(der), info);
    const lib = verdict('parseCsr', () => parseCsr(der), info);
    if ('ok' in fast) assert.ok('ok' in lib, `the lean parser accepted what the library refuses (${info})`);
    if (!('ok' in lib)) assert.ok(!('ok' in fast), info);
    const req = { csr: der, identities: [ID], ttlSeconds: 600, now, serial: Buffer.from([1]) };
    assert.deepEqual(
      verdict('issue', () => issueWorkloadCertificate(signer, req), info),
      verdict('issue (library)', () => issueWorkloadCertificateLibrary(signer, req), info),
      info,
    );
  }
});
