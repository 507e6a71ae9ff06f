import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { makeIntermediate, makeLeaf, makeRoot, type Ca } from '../../../test/helpers/pki.js';
import type { AuthResult } from '../../auth/types.js';
import { resolveConfig } from '../../config/index.js';
import { createCsr } from '../../pki/csr.js';
import { generateKeyPair, privateKeyToPem } from '../../pki/keys.js';
import { FileSecretSink } from '../../resources/file-secrets.js';
import type { Policy, SigningMaterial } from '../authority.js';
import { openIssuerSecretSource } from './issuer-secret.js';

const ID = 'spiffe://cluster.local/ns/shop/sa/cart';
const REF = { namespace: 'istio-system', name: 'istio-ca' };
const POLICY: Policy = {
  trustDomain: 'cluster.local',
  trustDomainAliases: [],
  defaultTtlSeconds: 3600,
  maxTtlSeconds: 86_400,
  maxCsrBytes: 32_768,
  impersonationAllow: [],
};
const caller: AuthResult = { identities: [ID], caller: ID, method: 'local-token' };
const now = () => new Date();
const quiet = { info() {}, warn() {}, error() {} };
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function csr(): string {
  return createCsr({ key: generateKeyPair('ec-p256').privateKey, sans: { uris: [ID] } }).pem;
}

/** The Secret as the Certificate controller writes it: tls.crt (the CA), tls.key, ca.crt (the root). */
function tlsSecret(ca: { cert: { pem: string } }, key: Ca['key'], root: Ca) {
  return {
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': Buffer.from(ca.cert.pem), 'tls.key': Buffer.from(privateKeyToPem(key)), 'ca.crt': Buffer.from(root.cert.pem) },
  };
}

function setup(o: { watchMarker?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-issuer-secret-'));
  dirs.push(dir);
  const sink = new FileSecretSink(dir);
  const config = resolveConfig({ dir, issuerSecret: 'istio-system/istio-ca' });
  const warnings: string[] = [];
  const log = { ...quiet, warn: (obj: object, m: string) => warnings.push(`${m} ${JSON.stringify(obj)}`) };
  const open = () =>
    openIssuerSecretSource({ config, log: log as never, now }, { watchMarker: o.watchMarker ?? false, markerIntervalMs: 20, pollMs: 0 });
  return { dir, sink, open, warnings };
}

describe('issuer secret material source', () => {
  const root = makeRoot({ now: new Date(Date.now() - 10 * 86_400_000), cn: 'PCA root' });
  const first = makeIntermediate(root, { now: new Date(Date.now() - 3600_000), cn: 'istio-ca' });

  it('without the Secret: not ready with a reason naming it, trusts no issuer, refuses to sign', async () => {
    const { open, warnings } = setup();
    const src = await open();
    try {
      const a = src.createAuthority(POLICY, now);
      const why = a.notReadyReason();
      assert.match(
        why ?? '',
        /^secret istio-system\/istio-ca not found \(no tls\.crt, tls\.key, ca\.crt in .*secrets\/istio-system\/istio-ca\)$/,
      );
      assert.deepEqual(src.issuers(), []);
      assert.throws(() => a.sign({ csr: csr(), caller, ttlSeconds: 0 }), { code: 'unavailable', reason: 'ca_not_ready' });
      assert.equal((src.readyDetail!() as { ready: boolean }).ready, false);
      assert.match(warnings.join('\n'), /no usable issuer secret yet/);
    } finally {
      void src.close();
    }
  });

  it('a valid Secret written later is swapped in: workloads chain leaf -> istio-ca -> root', async () => {
    const { sink, open } = setup();
    const src = await open();
    try {
      const a = src.createAuthority(POLICY, now);
      const swaps: SigningMaterial[] = [];
      src.onSwap((m) => {
        a.setMaterial(m);
        swaps.push(m);
      });
      await sink.put(REF, tlsSecret(first, first.key, root), { user: true });
      src.reload();
      assert.equal(swaps.length, 1);
      assert.equal(a.notReadyReason(), undefined);
      const r = a.sign({ csr: csr(), caller, ttlSeconds: 0 });
      assert.equal(r.chain.length, 3);
      const [leaf, ca, top] = r.chain.map((p) => new X509Certificate(p));
      assert.ok(leaf.verify(first.cert.publicKey), 'the leaf is signed by the Secret key');
      assert.equal(ca.fingerprint256, first.cert.node.fingerprint256);
      assert.equal(top.fingerprint256, root.cert.node.fingerprint256);
      assert.deepEqual(r.roots, [root.cert.pem]);
      assert.deepEqual(
        src.issuers().map((c) => c.serialNumber),
        [first.cert.node.serialNumber],
        'the placeholder is not kept as an issuer',
      );
      const detail = src.readyDetail!() as Record<string, unknown>;
      assert.equal(detail.ready, true);
      assert.equal(detail.serial, first.cert.serialHex);
    } finally {
      void src.close();
    }
  });

  const bad: [string, (s: FileSecretSink) => Promise<unknown>, RegExp][] = [
    [
      'a key that does not match',
      (s) => s.put(REF, tlsSecret(first, generateKeyPair('ec-p256').privateKey, root), { user: true }),
      /^secret istio-system\/istio-ca cannot sign workload certificates: .*tls\.key does not match the public key of tls\.crt "istio-ca"/,
    ],
    [
      'a certificate that is not a CA',
      (s) => {
        const leaf = makeLeaf(first, { now: new Date() });
        return s.put(REF, tlsSecret(leaf, leaf.key, root), { user: true });
      },
      /tls\.crt "spiffe:\/\/cluster\.local\/ns\/default\/sa\/web" is not a CA \(basicConstraints CA:TRUE missing\)/,
    ],
    [
      'a chain that does not reach ca.crt',
      (s) => s.put(REF, tlsSecret(first, first.key, makeRoot({ cn: 'other root' })), { user: true }),
      /is neither in the chain nor a trusted root/,
    ],
    [
      'an expired CA',
      (s) => {
        const old = makeIntermediate(root, { now: new Date(Date.now() - 3 * 86_400_000), days: 1, cn: 'istio-ca' });
        return s.put(REF, tlsSecret(old, old.key, root), { user: true });
      },
      /"istio-ca" expired at /,
    ],
  ];
  for (const [what, write, re] of bad) {
    it(`refuses ${what} at start, with the reason in notReadyReason`, async () => {
      const { sink, open } = setup();
      await write(sink);
      const src = await open();
      try {
        const a = src.createAuthority(POLICY, now);
        assert.match(a.notReadyReason() ?? '', re);
        assert.throws(() => a.sign({ csr: csr(), caller, ttlSeconds: 0 }), { code: 'unavailable' });
      } finally {
        void src.close();
      }
    });
  }

  it('a renewal swaps the key; a bad rewrite keeps the current CA; the previous one stays an mTLS issuer', async () => {
    const { sink, open, warnings } = setup();
    await sink.put(REF, tlsSecret(first, first.key, root), { user: true });
    const src = await open();
    try {
      const a = src.createAuthority(POLICY, now);
      src.onSwap((m) => a.setMaterial(m));
      assert.equal(a.notReadyReason(), undefined);
      const renewed = makeIntermediate(root, { now: new Date(), cn: 'istio-ca' });
      await sink.put(REF, tlsSecret(renewed, renewed.key, root), { user: true });
      src.reload();
      const leaf = new X509Certificate(a.sign({ csr: csr(), caller, ttlSeconds: 0 }).chain[0]);
      assert.ok(leaf.verify(renewed.cert.publicKey));
      assert.deepEqual(
        src.issuers().map((c) => c.serialNumber),
        [renewed.cert.node.serialNumber, first.cert.node.serialNumber],
      );
      // A broken rewrite: logged, the current CA stays and the server stays ready.
      await sink.put(REF, tlsSecret(first, renewed.key, root), { user: true });
      src.reload();
      assert.equal(a.notReadyReason(), undefined);
      assert.ok(new X509Certificate(a.sign({ csr: csr(), caller, ttlSeconds: 0 }).chain[0]).verify(renewed.cert.publicKey));
      assert.match(
        warnings.join('\n'),
        /the changed issuer secret is not usable; still signing with the current CA.*tls\.key does not match/,
      );
      const detail = src.readyDetail!() as { ready: boolean; lastError: { message: string } | null };
      assert.equal(detail.ready, true);
      assert.match(detail.lastError?.message ?? '', /tls\.key does not match/);
    } finally {
      void src.close();
    }
  });

  it("watches the sink's change marker: a write by another process is picked up without reload()", async () => {
    const { dir, open } = setup({ watchMarker: true });
    const src = await open();
    try {
      const a = src.createAuthority(POLICY, now);
      src.onSwap((m) => a.setMaterial(m));
      // fs.watchFile takes its first stat asynchronously: a write before it would be its baseline.
      await new Promise((r) => setTimeout(r, 200));
      // Another writer: its own sink instance, as `meshca apply` in another process.
      await new FileSecretSink(dir).put(REF, tlsSecret(first, first.key, root), { user: true });
      const deadline = Date.now() + 10_000;
      while (a.notReadyReason() !== undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(a.notReadyReason(), undefined);
      assert.equal(a.signer.cert.serialHex, first.cert.serialHex);
    } finally {
      void src.close();
    }
  });
});
