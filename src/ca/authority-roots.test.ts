import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeIntermediate, makeRoot } from '../../test/helpers/pki.js';
import { acceptResponse } from '../agent/response.js';
import { parseCertificates } from '../pki/certificate.js';
import { createCsr } from '../pki/csr.js';
import { generateKeyPair } from '../pki/keys.js';
import { Authority } from './authority.js';

/** During a root rotation both roots reach clients: in root_cert and in the last cert_chain entry, as istiod sends root-cert.pem. */

const now = new Date();
const ID = 'spiffe://cluster.local/ns/shop/sa/cart';
const policy = {
  trustDomain: 'cluster.local',
  trustDomainAliases: [],
  defaultTtlSeconds: 3600,
  maxTtlSeconds: 86400,
  maxCsrBytes: 32768,
  impersonationAllow: [],
};
const caller = { identities: [ID], caller: ID, method: 'local-token' as const };

test('two roots: the last cert_chain entry carries both; an old client (cert_chain only) and a new one agree; setMaterial switches back to one', () => {
  const oldRoot = makeRoot({ now, cn: 'old' });
  const newRoot = makeRoot({ now, cn: 'new' });
  const inter = makeIntermediate(newRoot, { now });
  const a = new Authority(
    { signer: { cert: inter.cert, key: inter.key, chain: [newRoot.cert] }, roots: [oldRoot.cert, newRoot.cert] },
    policy,
    () => now,
  );
  const kp = generateKeyPair('ec-p256');
  const csr = createCsr({ key: kp.privateKey, sans: { uris: [ID] } }).pem;
  const r = a.sign({ csr, caller, ttlSeconds: 0 });
  assert.equal(r.chain.length, 3);
  assert.equal(r.chain[1], inter.cert.pem);
  assert.deepEqual(
    parseCertificates(r.chain[2]).map((c) => c.fingerprint256),
    [oldRoot.cert.fingerprint256, newRoot.cert.fingerprint256],
  );
  assert.deepEqual(r.roots, [oldRoot.cert.pem, newRoot.cert.pem]);
  for (const rootCerts of [r.roots, []]) {
    const ok = acceptResponse({ certChain: r.chain, rootCerts }, { publicKey: kp.publicKey, spiffeId: ID, now });
    assert.equal(ok.roots.length, 2);
    assert.deepEqual(ok.chain.map((c) => c.fingerprint256).slice(1), [inter.cert.fingerprint256]);
  }
  a.setMaterial({ signer: { cert: inter.cert, key: inter.key, chain: [newRoot.cert] }, roots: [newRoot.cert] });
  const one = a.sign({ csr, caller, ttlSeconds: 0 });
  assert.deepEqual(one.chain.slice(1), [inter.cert.pem, newRoot.cert.pem], 'one root: the signer chain as it is');
});
