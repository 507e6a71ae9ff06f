import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeIntermediate, makeRoot } from '../../../test/helpers/pki.js';
import type { SigningMaterial } from '../authority.js';
import { MaterialHolder } from './holder.js';

const DAY = 86_400_000;
const start = new Date();

function materialOf(
  ca: { cert: SigningMaterial['signer']['cert']; key: SigningMaterial['signer']['key'] },
  root: { cert: SigningMaterial['signer']['cert'] },
  roots = [root.cert],
): SigningMaterial {
  return { signer: { cert: ca.cert, key: ca.key, chain: [root.cert] }, roots };
}

test('a swap tells the listeners once, keeps the replaced issuer until it expires', () => {
  const root = makeRoot({ now: start });
  const first = makeIntermediate(root, { now: start, days: 2 });
  const second = makeIntermediate(root, { now: start, days: 30 });
  let t = start.getTime();
  const h = new MaterialHolder(materialOf(first, root), { now: () => new Date(t) });
  const seen: string[] = [];
  h.onSwap((m) => seen.push(m.signer.cert.serialHex));

  assert.equal(h.swap(materialOf(first, root)), false, 'same issuer: nothing to do');
  assert.equal(h.swap(materialOf(second, root)), true);
  assert.deepEqual(seen, [second.cert.serialHex]);
  assert.equal(h.material.signer.cert.serialHex, second.cert.serialHex);
  assert.deepEqual(
    h.issuers().map((c) => c.serialNumber),
    [second.cert.node.serialNumber, first.cert.node.serialNumber],
  );

  t += 3 * DAY;
  assert.deepEqual(
    h.issuers().map((c) => c.serialNumber),
    [second.cert.node.serialNumber],
    'an expired issuer has no live certificates left',
  );
});

test('`always` swaps new roots around the same issuer; stillTrusted drops issuers the roots no longer vouch for', () => {
  const oldRoot = makeRoot({ now: start, cn: 'old' });
  const newRoot = makeRoot({ now: start, cn: 'new' });
  const a = makeIntermediate(oldRoot, { now: start });
  const b = makeIntermediate(newRoot, { now: start });
  const vouched = (top: { der: Buffer }, roots: { der: Buffer }[]) => roots.some((r) => r.der.equals(top.der));
  const errors: unknown[] = [];
  const h = new MaterialHolder(materialOf(a, oldRoot), { now: () => start, stillTrusted: vouched, onListenerError: (e) => errors.push(e) });
  h.onSwap(() => {
    throw new Error('listener broke');
  });
  assert.equal(h.swap(materialOf(a, oldRoot), true), true, 'trust widened around the same intermediate');
  assert.equal(errors.length, 1, 'a failing listener is reported, not thrown');
  h.swap(materialOf(b, newRoot, [oldRoot.cert, newRoot.cert]));
  assert.equal(h.issuers().length, 2, 'the old root is still trusted');
  h.swap(materialOf(b, newRoot, [newRoot.cert]), true);
  assert.deepEqual(
    h.issuers().map((c) => c.serialNumber),
    [b.cert.node.serialNumber],
    'the old root left the bundle',
  );
});

test('issuers replaced before the start are kept until they expire', () => {
  const root = makeRoot({ now: start });
  const old = makeIntermediate(root, { now: start, days: 1 });
  const cur = makeIntermediate(root, { now: start });
  let t = start.getTime();
  const h = new MaterialHolder(materialOf(cur, root), { now: () => new Date(t), previous: [old.cert] });
  assert.equal(h.issuers().length, 2);
  t += 2 * DAY;
  assert.equal(h.issuers().length, 1);
});
