import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../../test/helpers/tmp.js';
import type { ParsedCertificate } from '../pki/certificate.js';
import { generateKeyPair } from '../pki/keys.js';
import { createRootCertificate } from '../pki/profiles.js';
import type { SigningMaterial } from './authority.js';
import { publishTrustBundle, trustBundlePath } from './trust-bundle-file.js';

const root = (cn: string): ParsedCertificate =>
  createRootCertificate({ key: generateKeyPair('ec-p256').privateKey, subject: { commonName: cn }, now: new Date() });

/** The parts of an authority and a material source the publisher reads, driven by the test. */
function fakeCa(roots: ParsedCertificate[], known = true) {
  const listeners: ((m: SigningMaterial) => void)[] = [];
  const ca = {
    roots,
    known,
    authority: {
      get roots() {
        return ca.roots;
      },
      rootsKnown: () => ca.known,
    },
    material: { onSwap: (l: (m: SigningMaterial) => void) => void listeners.push(l) },
    swap(next: ParsedCertificate[]) {
      ca.roots = next;
      for (const l of listeners) l({ signer: { cert: next[0], key: generateKeyPair('ec-p256').privateKey, chain: [] }, roots: next });
    },
  };
  return ca;
}

function logger() {
  const lines: { level: string; msg: string }[] = [];
  return {
    lines,
    info: (_o: object, msg: string) => void lines.push({ level: 'info', msg }),
    error: (_o: object, msg: string) => void lines.push({ level: 'error', msg }),
  };
}

test('the trust bundle follows the roots: written at start, rewritten when they change, named in the log', () => {
  const tmp = tempDir('meshca-trust-file-');
  try {
    const [a, b] = [root('old root'), root('new root')];
    const ca = fakeCa([a]);
    const log = logger();
    const path = publishTrustBundle({ dir: tmp.path, authority: ca.authority, material: ca.material, log });
    assert.equal(path, join(tmp.path, 'trust-bundle.pem'));
    assert.equal(path, trustBundlePath(tmp.path));
    assert.equal(readFileSync(path, 'utf8'), a.pem);
    assert.equal(statSync(path).mode & 0o022, 0);
    assert.deepEqual(log.lines, [{ level: 'info', msg: `agents trust: ${path}` }]);

    // A rotation: both roots while workloads move, then the new one alone.
    ca.swap([a, b]);
    assert.equal(readFileSync(path, 'utf8'), a.pem + b.pem);
    ca.swap([b]);
    assert.equal(readFileSync(path, 'utf8'), b.pem);
    assert.equal(log.lines.filter((l) => l.msg === `agents trust the new roots: ${path}`).length, 2);
    // A renewed intermediate under the same roots changes nothing.
    ca.swap([b]);
    assert.equal(log.lines.length, 3);
  } finally {
    tmp.cleanup();
  }
});

test('a stand-in CA is never published; the file appears once real roots are known', () => {
  const tmp = tempDir('meshca-trust-file-');
  try {
    const ca = fakeCa([root('placeholder')], false);
    const log = logger();
    const path = publishTrustBundle({ dir: tmp.path, authority: ca.authority, material: ca.material, log });
    assert.equal(existsSync(path), false);
    assert.match(log.lines[0].msg, /agents trust: .*trust-bundle\.pem \(not written yet\)/);
    const real = root('issuer secret root');
    ca.known = true;
    ca.swap([real]);
    assert.equal(readFileSync(path, 'utf8'), real.pem);
  } finally {
    tmp.cleanup();
  }
});

test('a trust bundle that cannot be written is logged, and serving goes on', () => {
  const tmp = tempDir('meshca-trust-file-');
  try {
    // A directory in the file's place fails the write for any user, root included.
    mkdirSync(join(tmp.path, 'trust-bundle.pem'));
    const ca = fakeCa([root('r')]);
    const log = logger();
    publishTrustBundle({ dir: tmp.path, authority: ca.authority, material: ca.material, log });
    assert.equal(log.lines[0].level, 'error');
    assert.match(log.lines[0].msg, /cannot write the trust bundle/);
  } finally {
    tmp.cleanup();
  }
});
