import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeIntermediate, makeRoot } from '../../../test/helpers/pki.js';
import { localServingIssuer, type ServingIssuer } from '../../ca/serving.js';
import { ServingTls, type ServingMaterial } from './serving-tls.js';

const now = new Date();

test('a local issuer signs with the current signer; renew pushes the new certificate to subscribers', async () => {
  const root = makeRoot({ now });
  const ca = makeIntermediate(root, { now });
  const authority = { signer: { cert: ca.cert, key: ca.key, chain: [root.cert] }, roots: [root.cert] };
  const issued: Date[] = [];
  const tls = await ServingTls.start(localServingIssuer(authority), {
    sans: ['localhost', '127.0.0.1'],
    ttlSeconds: 3600,
    now: () => now,
    onIssue: (c) => issued.push(c.notAfter),
  });
  try {
    assert.equal(tls.followsMaterial, true);
    assert.ok(tls.material!.trustedCaPem.includes(root.cert.pem.trim()));
    assert.ok(tls.material!.certChainPem.includes(ca.cert.pem.trim()), 'the chain carries the issuing CA');
    const pushed: ServingMaterial[] = [];
    tls.subscribe((m) => pushed.push(m));
    await tls.renew();
    assert.equal(pushed.length, 1);
    assert.notEqual(pushed[0].keyPem, undefined);
    assert.equal(issued.length, 2);
  } finally {
    tls.stop();
  }
});

test('a failing issuer fails the start; the certificate comes from whatever the issuer returns', async () => {
  const failing: ServingIssuer = {
    retryMs: 1000,
    followsMaterial: false,
    issuedBy: 'the upstream',
    issue: async () => {
      throw new Error('upstream down');
    },
  };
  await assert.rejects(ServingTls.start(failing, { sans: ['localhost'], ttlSeconds: 60, now: () => now }), /upstream down/);
});
