import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeIntermediate, makeRoot } from '../../test/helpers/pki.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { bootstrapCa, bundleChainProblem, type BootstrapOptions } from './bootstrap.js';
import { CaState } from './state.js';

/**
 * The cluster bundle's chain only has to reach one of its own root-cert.pem roots, not the state
 * root: an external root (RootTrustPolicy secretRef) and the middle of a root rotation.
 */

const opts = (): BootstrapOptions => ({
  cluster: 'default',
  trustDomain: 'cluster.local',
  keyAlgorithm: 'ec-p256',
  rootDays: 30,
  intermediateDays: 10,
  now: new Date(),
});
const now = new Date();

function fresh(): { state: CaState; store: ReturnType<typeof openSqliteStore> } {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-boot-roots-'));
  return { state: new CaState(dir), store: openSqliteStore(dir) };
}

test('mid-rotation: intermediate under the new root, both roots trusted, state root still the old one', async () => {
  const { state, store } = fresh();
  const first = await bootstrapCa(state, store, opts());
  const oldRoot = first.bundle.roots[0];
  const next = makeRoot({ now, cn: 'new root' });
  const inter = makeIntermediate(next, { now });
  state.adoptCluster(
    'default',
    { caCert: inter.cert, caKey: inter.key, chain: [inter.cert, next.cert], roots: [oldRoot, next.cert] },
    { force: true },
  );
  const again = await bootstrapCa(state, store, opts());
  assert.ok(!again.createdRoot && !again.createdIntermediate, 'nothing minted');
  assert.equal(again.bundle.caCert.fingerprint256, inter.cert.fingerprint256);
  assert.deepEqual(
    again.bundle.roots.map((r) => r.fingerprint256),
    [oldRoot.fingerprint256, next.cert.fingerprint256],
  );
  await store.close();
});

test("secretRef: an external root beside meshca's own is accepted; a chain to no bundle root is not", async () => {
  const { state, store } = fresh();
  await bootstrapCa(state, store, opts());
  const external = makeRoot({ now, cn: 'external root' });
  const inter = makeIntermediate(external, { now });
  state.adoptCluster(
    'default',
    { caCert: inter.cert, caKey: inter.key, chain: [inter.cert, external.cert], roots: [external.cert] },
    { force: true },
  );
  assert.equal((await bootstrapCa(state, store, opts())).bundle.caCert.fingerprint256, inter.cert.fingerprint256);

  // root-cert.pem names a root the chain does not reach: a clear error, nothing written.
  const stranger = makeRoot({ now, cn: 'stranger' });
  state.adoptCluster(
    'default',
    { caCert: inter.cert, caKey: inter.key, chain: [inter.cert, external.cert], roots: [stranger.cert] },
    { force: true },
  );
  await assert.rejects(bootstrapCa(state, store, opts()), (e: Error & { reason?: string }) => {
    assert.equal(e.reason, 'intermediate_mismatch');
    assert.match(e.message, /cert-chain\.pem ends at .*external root.*which is none of the roots in root-cert\.pem \(.*stranger/);
    return true;
  });
  await store.close();
});

test('a directory that never had a meshca root serves an external bundle without minting one', async () => {
  const { state, store } = fresh();
  const external = makeRoot({ now, cn: 'external root' });
  const inter = makeIntermediate(external, { now });
  state.adoptCluster('default', { caCert: inter.cert, caKey: inter.key, chain: [inter.cert, external.cert], roots: [external.cert] });
  const boot = await bootstrapCa(state, store, opts());
  assert.ok(!boot.createdRoot && !state.hasRoot(), 'no meshca root minted');
  assert.equal(boot.bundle.roots[0].fingerprint256, external.cert.fingerprint256);
  await store.close();
});

test('bundleChainProblem: broken links and an intermediate without its root in cert-chain.pem', () => {
  const root = makeRoot({ now });
  const inter = makeIntermediate(root, { now });
  const other = makeIntermediate(makeRoot({ now }), { now });
  assert.equal(
    bundleChainProblem({ caCert: inter.cert, caKey: inter.key, chain: [inter.cert], roots: [root.cert] }),
    undefined,
    'the root completes a chain that stops below it',
  );
  assert.match(
    bundleChainProblem({ caCert: inter.cert, caKey: inter.key, chain: [inter.cert, other.cert, root.cert], roots: [root.cert] })!,
    /is not signed by the next certificate/,
  );
  assert.match(bundleChainProblem({ caCert: inter.cert, caKey: inter.key, chain: [inter.cert, root.cert], roots: [] })!, /holds no root/);
});
