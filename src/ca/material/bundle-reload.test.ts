import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeIntermediate, makeRoot } from '../../../test/helpers/pki.js';
import type { SigningMaterial } from '../authority.js';
import { CaState } from '../state.js';
import { ClusterBundleReload } from './bundle-reload.js';

const now = new Date();
const quiet = { info() {}, warn() {}, error() {} };

function setup() {
  const state = new CaState(mkdtempSync(join(tmpdir(), 'meshca-reload-')));
  const oldRoot = makeRoot({ now, cn: 'old root' });
  const first = makeIntermediate(oldRoot, { now });
  state.adoptCluster('default', { caCert: first.cert, caKey: first.key, chain: [first.cert, oldRoot.cert], roots: [oldRoot.cert] });
  const warnings: string[] = [];
  const log = { ...quiet, warn: (o: object, m: string) => warnings.push(`${m} ${JSON.stringify(o)}`) };
  const r = new ClusterBundleReload({
    state,
    cluster: 'default',
    initial: state.loadCluster('default'),
    now: () => new Date(),
    log,
    watchMarker: false,
    pollMs: 0,
  });
  const swaps: SigningMaterial[] = [];
  r.onSwap((m) => swaps.push(m));
  return { state, oldRoot, first, r, swaps, warnings };
}

test('a rotation step by step: each valid change is swapped in once, with the full trust bundle', () => {
  const { state, oldRoot, first, r, swaps } = setup();
  try {
    assert.equal(r.check(), false, 'nothing changed');
    // Trust widened: same intermediate, both roots.
    const newRoot = makeRoot({ now, cn: 'new root' });
    state.adoptCluster(
      'default',
      { caCert: first.cert, caKey: first.key, chain: [first.cert, oldRoot.cert], roots: [oldRoot.cert, newRoot.cert] },
      { force: true },
    );
    assert.equal(r.check(), true);
    assert.equal(r.check(), false, 'once per change');
    assert.deepEqual(
      swaps[0].roots.map((c) => c.fingerprint256),
      [oldRoot.cert.fingerprint256, newRoot.cert.fingerprint256],
    );
    // Intermediate re-issued under the new root: workloads of the old one still renew over mTLS.
    const second = makeIntermediate(newRoot, { now });
    state.adoptCluster(
      'default',
      { caCert: second.cert, caKey: second.key, chain: [second.cert, newRoot.cert], roots: [oldRoot.cert, newRoot.cert] },
      { force: true },
    );
    assert.equal(r.check(), true);
    assert.equal(swaps[1].signer.cert.fingerprint256, second.cert.fingerprint256);
    assert.deepEqual(
      swaps[1].signer.chain.map((c) => c.fingerprint256),
      [newRoot.cert.fingerprint256],
    );
    assert.deepEqual(
      r.issuers().map((c) => c.fingerprint256),
      [second.cert.fingerprint256, first.cert.fingerprint256],
    );
    // Old root withdrawn: its intermediate is no longer an issuer anyone trusts.
    state.adoptCluster(
      'default',
      { caCert: second.cert, caKey: second.key, chain: [second.cert, newRoot.cert], roots: [newRoot.cert] },
      { force: true },
    );
    assert.equal(r.check(), true);
    assert.deepEqual(
      r.issuers().map((c) => c.fingerprint256),
      [second.cert.fingerprint256],
    );
  } finally {
    r.close();
  }
});

test('an unusable bundle is refused and the current material stays: wrong key, foreign chain, not yet valid', () => {
  const { state, oldRoot, first, r, swaps, warnings } = setup();
  try {
    const other = makeIntermediate(oldRoot, { now });
    // ca-key.pem of another intermediate: loadCluster refuses it.
    state.adoptCluster(
      'default',
      { caCert: first.cert, caKey: other.key, chain: [first.cert, oldRoot.cert], roots: [oldRoot.cert] },
      { force: true },
    );
    assert.equal(r.check(), false);
    // A chain to a root that root-cert.pem does not hold.
    const stranger = makeRoot({ now, cn: 'stranger' });
    state.adoptCluster(
      'default',
      { caCert: first.cert, caKey: first.key, chain: [first.cert, oldRoot.cert], roots: [stranger.cert] },
      { force: true },
    );
    assert.equal(r.check(), false);
    // Issued "as if" an hour from now (reconcile --at): not valid yet, so it waits.
    const later = makeIntermediate(oldRoot, { now: new Date(now.getTime() + 3_600_000) });
    state.adoptCluster(
      'default',
      { caCert: later.cert, caKey: later.key, chain: [later.cert, oldRoot.cert], roots: [oldRoot.cert] },
      { force: true },
    );
    assert.equal(r.check(), false);
    assert.equal(swaps.length, 0);
    assert.equal(warnings.length, 3, warnings.join('\n'));
    assert.match(warnings[2], /not usable.*not valid before/);
    // A good bundle afterwards is taken.
    state.adoptCluster(
      'default',
      { caCert: other.cert, caKey: other.key, chain: [other.cert, oldRoot.cert], roots: [oldRoot.cert] },
      { force: true },
    );
    assert.equal(r.check(), true);
  } finally {
    r.close();
  }
});

test('a torn read (a writer replacing files one by one, no marker) is retried and then taken', async () => {
  const { state, oldRoot, r, swaps } = setup();
  try {
    const next = makeIntermediate(oldRoot, { now });
    const dir = state.clusterDir('default');
    writeFileSync(join(dir, 'ca-cert.pem'), next.cert.pem); // the key is still the old one
    assert.equal(r.check(), false);
    state.adoptCluster(
      'default',
      { caCert: next.cert, caKey: next.key, chain: [next.cert, oldRoot.cert], roots: [oldRoot.cert] },
      { force: true },
    );
    await new Promise((res) => setTimeout(res, 700));
    assert.equal(swaps.length, 1, 'the retry found the completed write');
    assert.equal(swaps[0].signer.cert.fingerprint256, next.cert.fingerprint256);
  } finally {
    r.close();
  }
});
