import assert from 'node:assert/strict';

import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SignJWT, exportJWK } from 'jose';
import { generateKeyPair } from '../pki/keys.js';
import { createIntermediateCertificate, createLeafCertificate, createRootCertificate } from '../pki/profiles.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { LocalTokenIssuer, bearerToken, createAuthenticator, type AuthenticatorOptions } from './index.js';

const TD = 'cluster.local';
const NOW = new Date();

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'meshca-auth-'));
}

/** A refusal must come as a rejected promise (the Authenticator contract), never as a synchronous throw. */
async function rejects(p: unknown, reason: string): Promise<void> {
  assert.ok(p instanceof Promise, `expected a rejected promise for ${reason}, got ${JSON.stringify(p)}`);
  await assert.rejects(p, (e: { code?: string; reason?: string }) => {
    assert.equal(e.reason, reason);
    return true;
  });
}

function ca() {
  const then = new Date(NOW.getTime() - 86400_000);
  const rootKey = generateKeyPair('ec-p256').privateKey;
  const root = createRootCertificate({ key: rootKey, now: then });
  const kp = generateKeyPair('ec-p256');
  const inter = createIntermediateCertificate({
    issuerCert: root,
    issuerKey: rootKey,
    publicKey: kp.publicKey,
    subject: { commonName: 'i' },
    days: 30,
    now: then,
  }).cert;
  return { root, inter, interKey: kp.privateKey };
}

function leafFrom(c: ReturnType<typeof ca>, uri: string, now = NOW, ttl = 3600): Buffer {
  return createLeafCertificate({
    issuerCert: c.inter,
    issuerKey: c.interKey,
    publicKey: generateKeyPair('ec-p256').publicKey,
    sans: { uris: [uri] },
    ttlSeconds: ttl,
    now,
  }).der;
}

async function withIssuer(extra: Partial<AuthenticatorOptions> = {}) {
  const store = openSqliteStore(tmp());
  const local = await LocalTokenIssuer.open(store);
  const c = ca();
  const auth = await createAuthenticator({ trustDomain: TD, audience: ['istio-ca'], local, issuers: () => [c.inter.node], ...extra });
  return { store, local, auth, c };
}

test('local tokens: valid, expired, wrong audience, unknown issuer, none', async () => {
  const { store, local, auth } = await withIssuer();
  const good = await local.issue({ namespace: 'foo', serviceAccount: 'bar', ttlSeconds: 600, audience: ['istio-ca'] });
  const r = await auth.authenticate({ token: good });
  assert.deepEqual(r.identities, ['spiffe://cluster.local/ns/foo/sa/bar']);
  assert.equal(r.method, 'local-token');
  const again = auth.authenticate({ token: good });
  assert.ok(!(again instanceof Promise), 'a token verified before answers synchronously (no promise hop on the hot path)');
  assert.equal(again.caller, r.caller, 'cached');

  const expired = await local.issue({
    namespace: 'foo',
    serviceAccount: 'bar',
    ttlSeconds: 60,
    audience: ['istio-ca'],
    now: new Date(Date.now() - 3600_000),
  });
  await rejects(auth.authenticate({ token: expired }), 'token_expired');
  const wrongAud = await local.issue({ namespace: 'foo', serviceAccount: 'bar', ttlSeconds: 60, audience: ['other'] });
  await rejects(auth.authenticate({ token: wrongAud }), 'bad_audience');
  await rejects(auth.authenticate({}), 'no_credentials');
  await rejects(auth.authenticate({ token: 'not-a-jwt' }), 'malformed_token');
  const { privateKey } = generateKeyPair('ec-p256');
  const foreign = await new SignJWT({ sub: 'system:serviceaccount:a:b' })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer('https://elsewhere')
    .setAudience('istio-ca')
    .setExpirationTime('1h')
    .sign(privateKey);
  await rejects(auth.authenticate({ token: foreign }), 'untrusted_issuer');
  const forged = await new SignJWT({ sub: 'system:serviceaccount:a:b' })
    .setProtectedHeader({ alg: 'ES256', kid: 'nope' })
    .setIssuer('meshca-local')
    .setAudience('istio-ca')
    .setExpirationTime('1h')
    .sign(privateKey);
  await rejects(auth.authenticate({ token: forged }), 'unknown_token_key');
  await store.close();
});

test('the local issuer key survives a reopen and is encrypted with the passphrase', async () => {
  const dir = tmp();
  const s1 = openSqliteStore(dir);
  const i1 = await LocalTokenIssuer.open(s1, { passphrase: 'pw' });
  const token = await i1.issue({ namespace: 'a', serviceAccount: 'b', ttlSeconds: 60, audience: ['istio-ca'] });
  const [row] = await s1.listTokenKeys();
  assert.match(row.privateKeyPem, /ENCRYPTED PRIVATE KEY/);
  await s1.close();
  const s2 = openSqliteStore(dir);
  const i2 = await LocalTokenIssuer.open(s2, { passphrase: 'pw' });
  const r = await i2.verifier({ trustDomain: TD, audience: ['istio-ca'] }).verify(token);
  assert.equal(r.caller, 'spiffe://cluster.local/ns/a/sa/b');
  assert.equal((await s2.listTokenKeys()).length, 1);
  await assert.rejects(LocalTokenIssuer.open(s2, { passphrase: 'wrong' }), /MESHCA_KEY_PASSPHRASE/);
  await s2.close();
});

test('JWKS file and OIDC discovery verify foreign issuers with the audience check', async () => {
  const { privateKey, publicKey } = generateKeyPair('ec-p256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const jwksPath = join(tmp(), 'jwks.json');
  writeFileSync(jwksPath, JSON.stringify({ keys: [jwk] }));
  const mint = (iss: string, aud: string) =>
    new SignJWT({ 'kubernetes.io': { namespace: 'ns1', serviceaccount: { name: 'sa1' } } })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(iss)
      .setAudience(aud)
      .setExpirationTime('1h')
      .sign(privateKey);

  const http = createServer((req, res) => {
    const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') res.end(JSON.stringify({ issuer: base, jwks_uri: `${base}/keys` }));
    else if (req.url === '/keys') res.end(JSON.stringify({ keys: [jwk] }));
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const oidcIssuer = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  try {
    const { auth, store } = await withIssuer({ jwksFile: jwksPath, jwksIssuer: 'https://file-issuer', oidcIssuer });
    const viaFile = await auth.authenticate({ token: await mint('https://file-issuer', 'istio-ca') });
    assert.equal(viaFile.method, 'jwks');
    assert.equal(viaFile.caller, 'spiffe://cluster.local/ns/ns1/sa/sa1');
    await rejects(auth.authenticate({ token: await mint('https://file-issuer', 'kube') }), 'bad_audience');
    const viaOidc = await auth.authenticate({ token: await mint(oidcIssuer, 'istio-ca') });
    assert.equal(viaOidc.method, 'oidc');
    await rejects(auth.authenticate({ token: await mint('https://unknown', 'istio-ca') }), 'untrusted_issuer');
    await store.close();
  } finally {
    http.close();
  }
});

test('mTLS: a current leaf from our intermediate authenticates; others do not', async () => {
  const { auth, c, store } = await withIssuer({ trustDomainAliases: ['old.td'] });
  const id = 'spiffe://cluster.local/ns/a/sa/b';
  const direct = auth.authenticate({ peerCertDer: leafFrom(c, id) });
  assert.ok(!(direct instanceof Promise), 'a client certificate is checked synchronously');
  const r = direct;
  assert.deepEqual([r.caller, r.method], [id, 'mtls']);
  assert.equal((await auth.authenticate({ peerCertDer: leafFrom(c, 'spiffe://old.td/ns/a/sa/b') })).caller, 'spiffe://old.td/ns/a/sa/b');
  await rejects(auth.authenticate({ peerCertDer: leafFrom(ca(), id) }), 'untrusted_client_cert');
  await rejects(auth.authenticate({ peerCertDer: leafFrom(c, id, new Date(Date.now() - 7200_000), 60) }), 'expired_client_cert');
  await rejects(auth.authenticate({ peerCertDer: leafFrom(c, 'spiffe://other.td/ns/a/sa/b') }), 'bad_client_cert');
  // A renewal must name a workload that could exist: Kubernetes names only.
  await rejects(auth.authenticate({ peerCertDer: leafFrom(c, 'spiffe://cluster.local/ns/A_b/sa/b') }), 'bad_client_cert');
  await store.close();
});

test('bearer header parsing', () => {
  assert.equal(bearerToken('Bearer abc.def'), 'abc.def');
  assert.equal(bearerToken('bearer  x '), 'x');
  assert.equal(bearerToken('Basic x'), undefined);
  assert.equal(bearerToken(undefined), undefined);
});
