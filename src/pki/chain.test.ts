import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NOW, daysFrom, makeCustom, makeIntermediate, makeLeaf, makeRoot, type Ca } from '../../test/helpers/pki.js';
import { verifyChain, type ChainOptions } from './chain.js';
import type { ParsedCertificate } from './certificate.js';
import { generateKeyPair } from './keys.js';

const KU_CA = ['digitalSignature', 'keyCertSign', 'cRLSign'] as const;
const ID = 'spiffe://cluster.local/ns/default/sa/web';

function check(chain: Ca[], roots: Ca[], o: Partial<ChainOptions> = {}) {
  return verifyChain(
    chain.map((c) => c.cert),
    { now: NOW, roots: roots.map((r) => r.cert), ...o },
  );
}

/** Exactly one problem, matching `re`: each fault has its own message and nothing else is reported. */
function assertOnly(r: { ok: boolean; problems: string[] }, re: RegExp): void {
  assert.equal(r.ok, false);
  assert.equal(r.problems.length, 1, `expected one problem, got:\n${r.problems.join('\n')}`);
  assert.match(r.problems[0], re);
}

describe('verifyChain', () => {
  const root = makeRoot();
  const int = makeIntermediate(root);
  const leaf = makeLeaf(int, { spiffeId: ID });

  it('accepts leaf, intermediate, root and reports the path and anchor', () => {
    const r = check([leaf, int, root], [root], { leafIsEndEntity: true });
    assert.deepEqual(r.problems, []);
    assert.equal(r.ok, true);
    assert.equal(r.anchor?.fingerprint256, root.cert.fingerprint256);
    assert.deepEqual(
      r.path.map((c: ParsedCertificate) => c.subject),
      [leaf.cert.subject, int.cert.subject, root.cert.subject],
    );
    assert.deepEqual(
      r.links.map((l) => l.role),
      ['leaf', 'intermediate', 'root'],
    );
  });

  it('accepts a chain that stops below the root when the root is trusted', () => {
    assert.equal(check([leaf, int], [root]).ok, true);
  });

  it('reports wrong chain order', () => {
    const other = makeIntermediate(root, { cn: 'Other Intermediate' });
    // leaf's issuer is the third certificate, an unrelated intermediate sits second.
    const r = check([leaf, other, int, root], [root]);
    assert.equal(r.ok, false);
    assert.deepEqual(r.problems, [
      'certificate #2 "Other Intermediate" is not part of the path to the root',
      `wrong chain order: the issuer of "${ID}" is certificate #3 but certificate #2 comes next`,
      'wrong chain order: the issuer of "Test Intermediate" is certificate #4 but certificate #2 comes next',
    ]);
    assertOnly(check([leaf, root, int], [root]), /^wrong chain order: the issuer of .* is certificate #3 but certificate #2 comes next$/);
  });

  it('reports a missing root', () => {
    assertOnly(
      check([leaf, int], []),
      /^the issuer "O = meshca-test, CN = Test Root" of "Test Intermediate" is neither in the chain nor a trusted root$/,
    );
  });

  it('reports a self-signed root that is not trusted', () => {
    const otherRoot = makeRoot({ cn: 'Other Root' });
    assertOnly(check([leaf, int, root], [otherRoot]), /^"Test Root" is self-signed but is not one of the trusted roots$/);
  });

  it('reports a CA without keyCertSign', () => {
    const noSign = makeCustom({ issuer: root, cn: 'No Sign CA', keyUsage: ['digitalSignature'] });
    const l = makeCustom({ issuer: noSign, cn: 'leaf', ca: false, uris: [ID] });
    assertOnly(check([l, noSign, root], [root]), /^"No Sign CA" signs "leaf" but its key usage lacks keyCertSign$/);
  });

  it('reports a certificate signed by a non-CA', () => {
    const l = makeCustom({ issuer: leaf, cn: 'below leaf', ca: false });
    const r = check([l, leaf, int, root], [root]);
    assert.equal(r.ok, false);
    assert.ok(
      r.problems.some((p) => /signs "below leaf" but is not a CA \(CA:FALSE\)/.test(p)),
      r.problems.join('\n'),
    );
  });

  it('reports a pathlen violation', () => {
    const tight = makeCustom({ cn: 'Tight Root', pathLen: 0, keyUsage: [...KU_CA] });
    const mid = makeCustom({ issuer: tight, cn: 'Mid CA', keyUsage: [...KU_CA] });
    const l = makeCustom({ issuer: mid, cn: 'leaf', ca: false, uris: [ID] });
    assertOnly(check([l, mid, tight], [tight]), /^pathlen violation: "Tight Root" has pathlen 0 but 1 CA certificate\(s\) follow it$/);
  });

  it('reports an expired CA', () => {
    const past = daysFrom(NOW, -400);
    const oldRoot = makeRoot({ now: past, cn: 'Old Root' });
    const expired = makeIntermediate(oldRoot, { now: past, days: 30, cn: 'Expired CA' });
    // A leaf outliving its issuer, so that only the CA's expiry is at fault.
    const l = makeCustom({ issuer: expired, cn: 'leaf', ca: false, uris: [ID], notBefore: daysFrom(NOW, -1), notAfter: daysFrom(NOW, 1) });
    assertOnly(check([l, expired, oldRoot], [oldRoot]), /^"Expired CA" expired at 2024-05-\d\dT12:00:00\.000Z$/);
  });

  it('reports a signature that does not verify', () => {
    const forged = makeCustom({ issuer: int, cn: 'forged', ca: false, uris: [ID], signWith: generateKeyPair('ec-p256').privateKey });
    assertOnly(check([forged, int, root], [root]), /^"forged" signature does not verify with the public key of "Test Intermediate"$/);
  });

  it('reports an AKI that does not match the issuer SKI', () => {
    const l = makeCustom({ issuer: int, cn: 'bad aki', ca: false, uris: [ID], authorityKeyId: Buffer.alloc(20, 7) });
    assertOnly(
      check([l, int, root], [root]),
      /^"bad aki" authority key id (07){20} does not match "Test Intermediate" subject key id [0-9a-f]{40}$/,
    );
  });

  it('reports a CA where an end entity is required', () => {
    assertOnly(check([int, root], [root], { leafIsEndEntity: true }), /^"Test Intermediate" is a CA certificate, not an end entity$/);
    assert.equal(check([int, root], [root]).ok, true);
  });

  it('reports an empty chain', () => {
    assertOnly(check([], [root]), /^the chain is empty$/);
  });

  it('reports every problem at once rather than stopping at the first', () => {
    const past = daysFrom(NOW, -400);
    const oldRoot = makeRoot({ now: past, cn: 'Old Root' });
    const expired = makeIntermediate(oldRoot, { now: past, days: 30, cn: 'Expired CA' });
    const l = makeCustom({ issuer: expired, cn: 'leaf', ca: false, authorityKeyId: Buffer.alloc(20, 1), notAfter: daysFrom(NOW, 1) });
    const r = check([l, oldRoot, expired], [oldRoot]);
    assert.equal(r.ok, false);
    assert.ok(r.problems.length >= 3, r.problems.join('\n'));
    for (const re of [/wrong chain order/, /authority key id/, /"Expired CA" expired at/]) {
      assert.ok(
        r.problems.some((p) => re.test(p)),
        `${re} missing from:\n${r.problems.join('\n')}`,
      );
    }
  });
});
