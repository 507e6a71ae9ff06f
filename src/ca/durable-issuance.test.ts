import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeIntermediate, makeRoot } from '../../test/helpers/pki.js';
import type { Authenticator } from '../auth/types.js';
import { createCsr } from '../pki/csr.js';
import { generateKeyPair } from '../pki/keys.js';
import type { AuditEntry, Store } from '../store/index.js';
import { Authority } from './authority.js';
import { DurableIssuanceService } from './durable-issuance.js';
import { RateLimiter } from './rate-limit.js';

const ID = 'spiffe://cluster.local/ns/shop/sa/cart';

/** A store whose rows become durable only when the test says so. */
function slowStore() {
  const queued: AuditEntry[] = [];
  const durable: AuditEntry[] = [];
  let release: (() => void) | undefined;
  let fail: Error | undefined;
  const store = {
    appendAudit: (e: AuditEntry) => void queued.push(e),
    flush: () =>
      new Promise<void>((resolve, reject) => {
        release = () => (fail ? reject(fail) : (durable.push(...queued.splice(0)), resolve()));
      }),
  } as unknown as Store;
  return { store, queued, durable, commit: () => release?.(), failWith: (e: Error) => (fail = e) };
}

function service(store: Store) {
  const now = new Date();
  const root = makeRoot({ now: new Date(now.getTime() - 60_000) });
  const inter = makeIntermediate(root, { now: new Date(now.getTime() - 60_000) });
  const authority = new Authority(
    { signer: { cert: inter.cert, key: inter.key, chain: [root.cert] }, roots: [root.cert] },
    {
      trustDomain: 'cluster.local',
      trustDomainAliases: [],
      defaultTtlSeconds: 3600,
      maxTtlSeconds: 86400,
      maxCsrBytes: 32768,
      impersonationAllow: [],
    },
  );
  const authenticator: Authenticator = { authenticate: async () => ({ identities: [ID], caller: ID, method: 'local-token' }) };
  return new DurableIssuanceService({ authenticator, authority, store, limiter: new RateLimiter(0), cluster: 'default' });
}

const csr = () => createCsr({ key: generateKeyPair('ec-p256').privateKey, sans: { uris: [ID] } }).pem;

test('the answer waits until the audit row is committed', async () => {
  const s = slowStore();
  let answered = false;
  const p = service(s.store)
    .issue({ credentials: { token: 't' }, csr: csr(), ttlSeconds: 0 })
    .then((r) => ((answered = true), r));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(answered, false, 'no answer while the row is only queued');
  assert.equal(s.queued.length, 1);
  s.commit();
  const r = await p;
  assert.equal(s.durable[0].serial, r.issued.serialHex, 'the row of the certificate handed out is durable');
});

test('a certificate whose row cannot be written is not handed out', async () => {
  const s = slowStore();
  s.failWith(new Error('database down'));
  const p = service(s.store).issue({ credentials: { token: 't' }, csr: csr(), ttlSeconds: 0 });
  await new Promise((r) => setTimeout(r, 10));
  s.commit();
  await assert.rejects(p, (e: { code: string; reason: string; message: string }) => {
    assert.equal(e.code, 'unavailable');
    assert.equal(e.reason, 'audit_unavailable');
    assert.match(e.message, /database down/);
    return true;
  });
});
