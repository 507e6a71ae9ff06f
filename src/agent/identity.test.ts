import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generateKeyPair } from '../pki/keys.js';
import { createLeafCertificate, createRootCertificate } from '../pki/profiles.js';
import { parseCertificate } from '../pki/certificate.js';
import { fakeToken } from './fake-ca.js';
import { decodeJwtPayload, identityFromCertificate, identityFromToken } from './identity.js';

const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (payload: unknown): string => `${enc({ alg: 'none' })}.${enc(payload)}.sig`;

test('a Kubernetes service-account token grants spiffe://<td>/ns/<ns>/sa/<sa>', () => {
  const id = identityFromToken(fakeToken('shop', 'cart'), 'cluster.local');
  assert.deepEqual(id, { spiffeId: 'spiffe://cluster.local/ns/shop/sa/cart', namespace: 'shop', serviceAccount: 'cart' });
  assert.equal(identityFromToken(fakeToken('shop', 'cart'), 'mesh.example').spiffeId, 'spiffe://mesh.example/ns/shop/sa/cart');
});

test('the kubernetes.io claim alone, or sub alone, is enough', () => {
  assert.equal(
    identityFromToken(jwt({ 'kubernetes.io': { namespace: 'a', serviceaccount: { name: 'b' } } }), 'cluster.local').spiffeId,
    'spiffe://cluster.local/ns/a/sa/b',
  );
  assert.equal(identityFromToken(jwt({ sub: 'system:serviceaccount:x:y' }), 'cluster.local').spiffeId, 'spiffe://cluster.local/ns/x/sa/y');
});

test('claims that disagree, or name no service account, are refused with the reason', () => {
  const t = jwt({ sub: 'system:serviceaccount:a:b', 'kubernetes.io': { namespace: 'a', serviceaccount: { name: 'c' } } });
  assert.throws(() => identityFromToken(t, 'cluster.local'), /claims disagree.*a\/c.*a\/b/);
  assert.throws(() => identityFromToken(jwt({ sub: 'alice' }), 'cluster.local'), /names no service account/);
});

test('a token that is not a JWT is refused without quoting it', () => {
  assert.throws(
    () => decodeJwtPayload('s3cret'),
    (e: Error) => /not a JWT/.test(e.message) && !e.message.includes('s3cret'),
  );
  assert.throws(() => decodeJwtPayload('a.%%%.c'), /not base64url-encoded JSON/);
  assert.throws(() => decodeJwtPayload(`a.${enc([1])}.c`), /not a JSON object/);
  assert.deepEqual(decodeJwtPayload(`  ${jwt({ sub: 'x' })}\n`), { sub: 'x' });
});

test('identity of a previous certificate is its SPIFFE URI SAN', () => {
  const now = new Date();
  const rk = generateKeyPair('ec-p256');
  const root = createRootCertificate({ key: rk.privateKey, now });
  const leafFor = (uris: string[]) =>
    parseCertificate(
      createLeafCertificate({
        issuerCert: root,
        issuerKey: rk.privateKey,
        publicKey: generateKeyPair('ec-p256').publicKey,
        sans: { uris, dnsNames: uris.length ? [] : ['x.example'] },
        ttlSeconds: 60,
        now,
      }).der,
    );
  assert.deepEqual(identityFromCertificate(leafFor(['spiffe://td/ns/n/sa/s'])), {
    spiffeId: 'spiffe://td/ns/n/sa/s',
    namespace: 'n',
    serviceAccount: 's',
  });
  assert.throws(() => identityFromCertificate(leafFor([])), /exactly one SPIFFE URI SAN.*none/);
});
