import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NOW, daysFrom, makeIntermediate, makeLeaf, makeRoot } from '../../test/helpers/pki.js';
import { verifyChain } from './chain.js';
import { createCsr, parseCsr } from './csr.js';
import {
  chainRole,
  colonHex,
  describeCertificate,
  describeChain,
  describeCsr,
  describeIdentity,
  formatTimeLeft,
  renderChain,
  renderIdentity,
  renderReport,
} from './describe.js';
import { generateKeyPair } from './keys.js';

const ID = 'spiffe://cluster.local/ns/bookinfo/sa/reviews';

describe('describe', () => {
  const root = makeRoot();
  const int = makeIntermediate(root, { days: 30 });
  const leaf = makeLeaf(int, { spiffeId: ID, ttlSeconds: 86_400 });

  it('formats time left and time since expiry', () => {
    assert.equal(formatTimeLeft(3 * 86_400_000 + 5 * 3_600_000 + 59_000), '3d 5h');
    assert.equal(formatTimeLeft(2 * 3_600_000 + 7 * 60_000), '2h 7m');
    assert.equal(formatTimeLeft(90_000), '1m 30s');
    assert.equal(formatTimeLeft(-(86_400_000 + 3_600_000)), 'expired 1d 1h ago');
  });

  it('describes every field of a workload certificate against the given clock', () => {
    const d = describeCertificate(leaf.cert, NOW, chainRole(leaf.cert, 0));
    assert.equal(d.role, 'leaf');
    assert.equal(d.subject, '');
    assert.equal(d.issuer, 'O = meshca-test, CN = Test Intermediate');
    assert.match(d.serial, /^([0-9A-F]{2}:){15,16}[0-9A-F]{2}$/);
    assert.equal(d.notBefore, '2025-06-01T11:59:00.000Z');
    assert.equal(d.notAfter, '2025-06-02T12:00:00.000Z');
    assert.equal(d.secondsLeft, 86_400);
    assert.equal(d.timeLeft, '1d 0h');
    assert.equal(d.status, 'valid');
    assert.deepEqual(d.key, { algorithm: 'EC', bits: 256, curve: 'P-256', label: 'EC P-256' });
    assert.equal(d.signatureAlgorithm, 'ecdsa-with-SHA256');
    assert.deepEqual(d.subjectAltNames?.uris, [ID]);
    assert.deepEqual(d.basicConstraints, { ca: false, pathLen: undefined, critical: true });
    assert.deepEqual(d.keyUsage?.usages, ['digitalSignature', 'keyEncipherment']);
    assert.deepEqual([...(d.extendedKeyUsage?.usages ?? [])], ['serverAuth', 'clientAuth']);
    assert.equal(d.subjectKeyId, null);
    assert.equal(d.authorityKeyId, colonHex(int.cert.ext.subjectKeyId!));
    assert.equal(d.fingerprintSha256, leaf.cert.fingerprint256);
  });

  it('tells expired and not-yet-valid certificates apart', () => {
    assert.equal(describeCertificate(leaf.cert, daysFrom(NOW, 2)).status, 'expired');
    assert.equal(describeCertificate(leaf.cert, daysFrom(NOW, 2)).timeLeft, 'expired 1d 0h ago');
    assert.equal(describeCertificate(leaf.cert, daysFrom(NOW, -1)).status, 'not yet valid');
  });

  it('names roles by position and kind', () => {
    assert.equal(chainRole(int.cert, 0), 'signing CA');
    assert.equal(chainRole(int.cert, 1), 'intermediate');
    assert.equal(chainRole(root.cert, 2), 'root');
    assert.equal(chainRole(leaf.cert, 1), 'end entity (misplaced)');
  });

  it('renders the text an operator reads', () => {
    const text = renderReport({
      source: 'chain.pem',
      kind: 'pem',
      certificates: [describeCertificate(leaf.cert, NOW), describeCertificate(int.cert, NOW, 'intermediate')],
      csrs: [],
      chain: describeChain(verifyChain([leaf.cert, int.cert], { now: NOW, roots: [root.cert] }), '--root root.pem'),
      identity: describeIdentity(leaf.cert.ext.san),
    });
    for (const line of [
      'Source: chain.pem (pem)',
      'Certificate #1: leaf',
      '  Subject:             (empty)',
      '  Not after:           2025-06-02T12:00:00.000Z (1d 0h left)',
      '  Public key:          EC P-256',
      `  SANs:                URI:${ID} (critical)`,
      '  Basic constraints:   CA:FALSE (critical)',
      '  Key usage:           digitalSignature, keyEncipherment (critical)',
      '  Extended key usage:  serverAuth, clientAuth',
      '  Subject key id:      none',
      'Certificate #2: intermediate',
      '  Basic constraints:   CA:TRUE, pathlen:0 (critical)',
      `  SHA-256 fingerprint: ${int.cert.fingerprint256}`,
      `Chain: verifies to root "${root.cert.subject}" (${root.cert.fingerprint256}) trusted from --root root.pem`,
      `SPIFFE ID: ${ID} (trust domain cluster.local, namespace bookinfo, service account reviews)`,
    ]) {
      assert.ok(text.includes(`${line}\n`), `missing line ${JSON.stringify(line)} in:\n${text}`);
    }
  });

  it('renders a failed chain with every problem', () => {
    const r = verifyChain([leaf.cert, int.cert], { now: NOW, roots: [] });
    const d = describeChain(r, 'nothing');
    assert.equal(d.verified, false);
    assert.equal(d.root, null);
    assert.equal(renderChain(d), `Chain: not verified (no root given):\n  - ${r.problems[0]}`);
    assert.equal(
      renderChain(describeChain(r, '--root other.pem')),
      `Chain: does NOT verify (trust anchors from --root other.pem):\n  - ${r.problems[0]}`,
    );
  });

  it('describes identities: none, Istio workload, plain SPIFFE, several, invalid', () => {
    assert.equal(renderIdentity(describeIdentity(undefined)), 'SPIFFE ID: none');
    assert.deepEqual(describeIdentity({ uris: ['spiffe://td/x'] }), { spiffeIds: ['spiffe://td/x'], invalid: [], trustDomain: 'td' });
    assert.match(renderIdentity(describeIdentity({ uris: ['spiffe://a/x', 'spiffe://b/y'] })), /more than one; Istio expects exactly one/);
    const bad = describeIdentity({ uris: ['spiffe://UP/x', 'https://example.com'] });
    assert.deepEqual(bad.invalid, ['spiffe://UP/x']);
    assert.equal(renderIdentity(bad), 'SPIFFE ID: none\n  invalid SPIFFE URI SAN: spiffe://UP/x');
  });

  it('describes CSRs', () => {
    const kp = generateKeyPair('rsa-2048');
    const d = describeCsr(parseCsr(createCsr({ key: kp.privateKey, sans: { uris: [ID] } }).pem));
    assert.equal(d.key.label, 'RSA 2048');
    assert.equal(d.signatureAlgorithm, 'sha256WithRSAEncryption');
    assert.deepEqual(d.subjectAltNames.uris, [ID]);
    assert.equal(d.requestsCA, false);
  });

  it('produces JSON-serialisable descriptions', () => {
    const json = JSON.parse(JSON.stringify(describeCertificate(root.cert, NOW, 'root')));
    assert.equal(json.role, 'root');
    assert.equal(json.selfSigned, true);
    assert.equal(json.basicConstraints.ca, true);
  });
});
