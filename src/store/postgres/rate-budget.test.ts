import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startPostgres, type PgCluster } from '../../../test/helpers/postgres.js';
import { isMeshcaError } from '../../pki/errors.js';
import { openPgStore, type PgStore } from './index.js';

let cluster: PgCluster;
let stores: PgStore[] = [];
before(async () => {
  cluster = await startPostgres();
  const url = await cluster.createDatabase('budget');
  stores = await Promise.all([1, 2].map(() => openPgStore(url)));
});
after(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await cluster?.stop();
});

test('two stores draw on one bucket: a burst is shared, not doubled, and it refills at the rate', async () => {
  const [a, b] = stores.map((s) => s.rateBudget('test.shared', 1, 3));
  const first = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).tryTake()));
  // Three in the bucket, and at most one more refilled while the twelve ran.
  const got = first.filter(Boolean).length;
  assert.ok(got >= 3 && got <= 4, `took ${got} of a burst of 3`);
  while (await a.tryTake()); // whatever refilled meanwhile
  const refusal = await b.take('IssueCertificate').then(
    () => new Error('a token was left'),
    (e: unknown) => e,
  );
  assert.ok(isMeshcaError(refusal), String(refusal));
  assert.equal(refusal.code, 'resource_exhausted');
  assert.equal(refusal.retryAfterMs, 1000);
  assert.match(refusal.message, /shared budget of 1 calls per second \(test\.shared\) is spent; retry in 1000 ms/);
  // The waiting form gets the next token once it has refilled.
  await b.takeWaiting('serving certificate', 5000);
  const other = stores[0].rateBudget('test.other', 1, 3);
  assert.equal(await other.tryTake(), true, 'another name is another bucket');
  assert.equal(await stores[1].rateBudget('off', 0).tryTake(), true, 'a rate of 0 is no limit');
});
