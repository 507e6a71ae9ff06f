import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DAY, NOW, daysFrom, makeCustom, makeIntermediate, makeLeaf, makeRoot, type Ca } from '../../test/helpers/pki.js';
import { certsToPem } from '../pki/certificate.js';
import { generateKeyPair, privateKeyToPem } from '../pki/keys.js';
import { checkBundle, detectLayout, type BundleContents } from './bundle-check.js';

const KU_CA = ['digitalSignature', 'keyCertSign', 'cRLSign'] as const;

function istio(ca: Ca, above: Ca[], roots: Ca[] = [above[above.length - 1]]): BundleContents {
  return {
    'ca-cert.pem': ca.cert.pem,
    'ca-key.pem': privateKeyToPem(ca.key),
    'cert-chain.pem': certsToPem([ca, ...above].map((c) => c.cert)),
    'root-cert.pem': certsToPem(roots.map((r) => r.cert)),
  };
}

function only(files: BundleContents, re: RegExp, now = NOW): void {
  const r = checkBundle(files, { now });
  assert.equal(r.ok, false);
  assert.equal(r.bundle, undefined);
  assert.equal(r.errors.length, 1, `expected one error, got:\n${r.errors.join('\n')}`);
  assert.match(r.errors[0], re);
}

describe('checkBundle', () => {
  const root = makeRoot();
  const int = makeIntermediate(root, { days: 365 });

  it('accepts a correct Istio bundle and returns it normalised', () => {
    const r = checkBundle(istio(int, [root]), { now: NOW });
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.warnings, []);
    assert.equal(r.ok, true);
    assert.equal(r.layout, 'istio');
    assert.deepEqual(
      r.bundle?.chain.map((c) => c.subject),
      [int.cert.subject, root.cert.subject],
    );
    assert.equal(r.bundle?.roots[0].fingerprint256, root.cert.fingerprint256);
  });

  it('accepts the cert-manager layout (tls.crt, tls.key, ca.crt)', () => {
    const files = { 'tls.crt': int.cert.pem, 'tls.key': privateKeyToPem(int.key), 'ca.crt': root.cert.pem };
    assert.equal(detectLayout(files), 'cert-manager');
    const r = checkBundle(files, { now: NOW });
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(
      r.bundle?.chain.map((c) => c.subject),
      [int.cert.subject, root.cert.subject],
    );
  });

  it('reports a key that does not match the certificate', () => {
    only(
      { ...istio(int, [root]), 'ca-key.pem': privateKeyToPem(generateKeyPair('ec-p256').privateKey) },
      /^ca-key\.pem does not match the public key of ca-cert\.pem "Test Intermediate"$/,
    );
  });

  it('reports a missing root', () => {
    const files = istio(int, [root]);
    delete files['root-cert.pem'];
    const r = checkBundle(files, { now: NOW });
    assert.equal(r.ok, false);
    assert.equal(r.errors[0], 'root-cert.pem is missing: the bundle has no root certificate to anchor trust');
    assert.ok(
      r.errors.some((e) => /is self-signed but is not one of the trusted roots/.test(e)),
      r.errors.join('\n'),
    );
  });

  it('reports a chain whose root is not the one in root-cert.pem', () => {
    only(istio(int, [root], [makeRoot({ cn: 'Other Root' })]), /^"Test Root" is self-signed but is not one of the trusted roots$/);
  });

  it('reports wrong chain order in cert-chain.pem', () => {
    const files = istio(int, [root]);
    files['cert-chain.pem'] = certsToPem([root.cert, int.cert]);
    only(files, /^wrong chain order: cert-chain\.pem must start with ca-cert\.pem "Test Intermediate" but it is certificate #2$/);
    // Deeper down: CA, root, intermediate.
    const top = makeRoot({ pathLen: 2, cn: 'Top' });
    const mid = makeIntermediate(top, { pathLen: 1, cn: 'Mid' });
    const low = makeIntermediate(mid, { cn: 'Low' });
    const deep = istio(low, [mid, top]);
    deep['cert-chain.pem'] = certsToPem([low.cert, top.cert, mid.cert]);
    only(deep, /^wrong chain order: the issuer of "Low" is certificate #3 but certificate #2 comes next$/);
    assert.deepEqual(checkBundle(istio(low, [mid, top]), { now: NOW }).errors, []);
  });

  it('reports a cert-chain.pem that lacks the signing CA', () => {
    const files = istio(int, [root]);
    files['cert-chain.pem'] = root.cert.pem;
    only(files, /^cert-chain\.pem does not contain ca-cert\.pem "Test Intermediate"; it must start with the signing CA/);
  });

  it('reports a signing certificate that is not a CA', () => {
    const leaf = makeLeaf(int);
    const files = istio(leaf, [int, root]);
    const r = checkBundle(files, { now: NOW });
    assert.equal(r.ok, false);
    assert.ok(
      r.errors.some((e) => /is not a CA \(basicConstraints CA:TRUE missing\), so it cannot sign workload certificates$/.test(e)),
      r.errors.join('\n'),
    );
    assert.ok(
      r.errors.some((e) => /lacks the keyCertSign key usage/.test(e)),
      r.errors.join('\n'),
    );
  });

  it('reports a CA without keyCertSign', () => {
    const noSign = makeCustom({ issuer: root, cn: 'No Sign', keyUsage: ['digitalSignature', 'cRLSign'] });
    only(istio(noSign, [root]), /^ca-cert\.pem "No Sign" lacks the keyCertSign key usage, so it cannot sign workload certificates$/);
  });

  it('reports a pathlen too small for the CA to sign workloads', () => {
    const tight = makeCustom({ cn: 'Tight Root', pathLen: 0, keyUsage: [...KU_CA] });
    const ca = makeCustom({ issuer: tight, cn: 'Cluster CA', keyUsage: [...KU_CA] });
    only(
      istio(ca, [tight]),
      /^pathlen too small: "Tight Root" has pathlen 0 but 1 CA certificate\(s\) sit below it once "Cluster CA" signs workloads$/,
    );
    // One level more room is enough.
    const roomy = makeCustom({ cn: 'Roomy Root', pathLen: 1, keyUsage: [...KU_CA] });
    const ok = makeCustom({ issuer: roomy, cn: 'Cluster CA', keyUsage: [...KU_CA] });
    assert.deepEqual(checkBundle(istio(ok, [roomy]), { now: NOW }).errors, []);
  });

  it('reports an expired CA as an error and one expiring soon as a warning', () => {
    only(istio(int, [root]), /^"Test Intermediate" expired at 2026-06-01T12:00:00\.000Z$/, daysFrom(NOW, 366));
    const soon = checkBundle(istio(int, [root]), { now: daysFrom(NOW, 350) });
    assert.equal(soon.ok, true);
    assert.deepEqual(soon.warnings, ['"Test Intermediate" expires in 15d 0h (2026-06-01T12:00:00.000Z)']);
    const custom = checkBundle(istio(int, [root]), { now: daysFrom(NOW, 300), warnWithinMs: 90 * DAY });
    assert.equal(custom.warnings.length, 1);
  });

  it('warns when cert-chain.pem stops before the root', () => {
    const files = istio(int, [root]);
    files['cert-chain.pem'] = int.cert.pem;
    const r = checkBundle(files, { now: NOW });
    assert.equal(r.ok, true);
    assert.deepEqual(r.warnings, [
      'cert-chain.pem does not end with the root "Test Root"; Istio expects the intermediate(s) then the root',
    ]);
    assert.equal(r.bundle?.chain.length, 2, 'the adopted chain is completed up to the root');
  });

  it('reports every problem at once', () => {
    const files = istio(int, [root]);
    files['ca-key.pem'] = privateKeyToPem(generateKeyPair('ec-p256').privateKey);
    files['cert-chain.pem'] = certsToPem([root.cert, int.cert]);
    const r = checkBundle(files, { now: daysFrom(NOW, 366) });
    for (const re of [/does not match/, /wrong chain order/, /expired at/]) {
      assert.ok(
        r.errors.some((e) => re.test(e)),
        `${re} missing from:\n${r.errors.join('\n')}`,
      );
    }
  });

  it('names unreadable files and missing files', () => {
    const files = istio(int, [root]);
    files['ca-cert.pem'] = '-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n';
    files['ca-key.pem'] = 'nonsense';
    const r = checkBundle(files, { now: NOW });
    assert.deepEqual(r.errors, [
      'ca-cert.pem: PEM block "CERTIFICATE" has an invalid base64 body',
      'ca-key.pem: not a readable PEM private key',
    ]);
    const partial = checkBundle({ 'ca-cert.pem': int.cert.pem }, { now: NOW });
    assert.deepEqual(partial.errors.slice(0, 3), [
      'ca-key.pem is missing',
      'cert-chain.pem is missing',
      'root-cert.pem is missing: the bundle has no root certificate to anchor trust',
    ]);
    assert.deepEqual(checkBundle({}, { now: NOW }).errors, [
      'no plugin-CA files found: expected ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem (or tls.crt, tls.key, ca.crt)',
    ]);
  });

  it('refuses a ca-cert.pem holding more than the signing CA', () => {
    const files = istio(int, [root]);
    files['ca-cert.pem'] = certsToPem([int.cert, root.cert]);
    only(files, /^ca-cert\.pem holds 2 certificates; it must hold only the signing CA \(put the rest in cert-chain\.pem\)$/);
  });
});
