import assert from 'node:assert/strict';
import { createHmac, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT, exportJWK } from 'jose';
import { MeshcaError } from '../pki/errors.js';
import { generateKeyPair } from '../pki/keys.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import type { Store } from '../store/index.js';
import {
  LocalTokenIssuer,
  createAuthenticator,
  identityOf,
  serviceAccountFromClaims,
  serviceAccountFromUsername,
  type Authenticator,
} from './index.js';
import { jwksFileVerifier } from './jwks.js';
import { tokenReviewVerifier } from './token-review.js';

const TD = 'cluster.local';
const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const nowS = (): number => Math.floor(Date.now() / 1000);

/** Names a validly signed token might carry that must never reach a SPIFFE ID. */
const BAD_NAMES: { ns: string; sa: string; reason: string }[] = [
  { ns: 'evil/sa/x/ns/istio-system', sa: 'y', reason: 'bad_namespace' },
  { ns: 'default', sa: 'a/b', reason: 'bad_service_account' },
  { ns: 'default', sa: 'a:b', reason: 'bad_service_account' },
  { ns: 'Default', sa: 'web', reason: 'bad_namespace' },
  { ns: 'default', sa: 'Web', reason: 'bad_service_account' },
  { ns: '', sa: 'web', reason: 'bad_namespace' },
  { ns: 'default', sa: '', reason: 'bad_service_account' },
  { ns: 'default', sa: 'a'.repeat(300), reason: 'bad_service_account' },
  { ns: 'n'.repeat(64), sa: 'web', reason: 'bad_namespace' },
  { ns: 'default', sa: '..', reason: 'bad_service_account' },
  { ns: '..', sa: 'web', reason: 'bad_namespace' },
  { ns: 'default', sa: 'a..b', reason: 'bad_service_account' },
  { ns: 'default', sa: '-a', reason: 'bad_service_account' },
  { ns: 'default', sa: 'a\nb', reason: 'bad_service_account' },
];

async function refused(p: unknown, reason: string, what: string): Promise<void> {
  assert.ok(p instanceof Promise, `${what}: expected a rejected promise`);
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof MeshcaError, `${what}: ${String(e)}`);
    assert.equal(e.code, 'unauthenticated', `${what}: ${e.reason} ${e.message}`);
    assert.equal(e.reason, reason, `${what}: ${e.message}`);
    return true;
  });
}

describe('token claims must be Kubernetes names', () => {
  test('serviceAccountFromClaims, serviceAccountFromUsername and identityOf refuse injected names as unauthenticated', () => {
    for (const { ns, sa, reason } of BAD_NAMES) {
      const check = (f: () => unknown, what: string) =>
        assert.throws(
          f,
          (e: unknown) => e instanceof MeshcaError && e.code === 'unauthenticated' && e.reason === reason,
          `${what} ${JSON.stringify([ns, sa])}`,
        );
      check(() => serviceAccountFromClaims({ 'kubernetes.io': { namespace: ns, serviceaccount: { name: sa } } }), 'kubernetes.io claim');
      check(() => identityOf({ namespace: ns, serviceAccount: sa }, TD), 'identityOf');
      if (ns && sa && !sa.includes(':')) check(() => serviceAccountFromUsername(`system:serviceaccount:${ns}:${sa}`), 'username');
    }
    assert.deepEqual(serviceAccountFromUsername('system:serviceaccount:shop:cart.v1'), { namespace: 'shop', serviceAccount: 'cart.v1' });
    assert.equal(
      identityOf({ namespace: 'a'.repeat(63), serviceAccount: 'b'.repeat(253) }, TD),
      `spiffe://${TD}/ns/${'a'.repeat(63)}/sa/${'b'.repeat(253)}`,
    );
    // A sub with extra colons is not a service account username at all.
    assert.equal(serviceAccountFromUsername('system:serviceaccount:default:web:extra'), undefined);
    assert.throws(
      () => serviceAccountFromClaims({ sub: 'system:serviceaccount:istio-system:istiod:x' }),
      /no_service_account|names no Kubernetes service account/,
    );
  });
});

describe('token attacks against the local issuer', () => {
  let store: Store;
  let local: LocalTokenIssuer;
  let auth: Authenticator;
  let key: KeyObject;
  let kid: string;

  before(async () => {
    store = openSqliteStore(mkdtempSync(join(tmpdir(), 'meshca-attacks-')));
    local = await LocalTokenIssuer.open(store);
    auth = await createAuthenticator({ trustDomain: TD, audience: ['istio-ca'], local, issuers: () => [] });
    const [row] = await store.listTokenKeys();
    key = createPrivateKey(row.privateKeyPem);
    kid = row.kid;
  });
  after(() => store.close());

  /** A token signed with the issuer's own key: only the claims are hostile. */
  const signed = (claims: Record<string, unknown>, o: { aud?: string; exp?: number; iss?: string } = {}) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
      .setIssuer(o.iss ?? 'meshca-local')
      .setAudience(o.aud ?? 'istio-ca')
      .setIssuedAt()
      .setExpirationTime(o.exp ?? nowS() + 600)
      .sign(key);
  const k8s = (ns: string, sa: string) => ({
    'kubernetes.io': { namespace: ns, serviceaccount: { name: sa } },
    sub: `system:serviceaccount:${ns}:${sa}`,
  });

  test('a well-formed local token still authenticates', async () => {
    const r = await auth.authenticate({ token: await signed(k8s('default', 'web')) });
    assert.equal(r.caller, `spiffe://${TD}/ns/default/sa/web`);
  });

  test('the issuer refuses to mint tokens for names that are not Kubernetes names', async () => {
    for (const { ns, sa, reason } of BAD_NAMES) {
      await assert.rejects(
        local.issue({ namespace: ns, serviceAccount: sa, ttlSeconds: 60, audience: ['istio-ca'] }),
        (e: unknown) => e instanceof MeshcaError && e.reason === reason,
      );
    }
  });

  test('claim injection in a validly signed token is refused, never turned into an identity', async () => {
    for (const { ns, sa, reason } of BAD_NAMES) {
      await refused(auth.authenticate({ token: await signed(k8s(ns, sa)) }), reason, `${ns}/${sa}`);
    }
    // Only a sub, with extra colons: it names no service account.
    await refused(
      auth.authenticate({ token: await signed({ sub: 'system:serviceaccount:evil:x:istio-system:y' }) }),
      'no_service_account',
      'sub with colons',
    );
  });

  test('alg none, HS256 with the public key, expired, wrong audience, foreign kid, untrusted issuer', async () => {
    const claims = { ...k8s('default', 'web'), iss: 'meshca-local', aud: 'istio-ca', exp: nowS() + 600 };
    const none = `${b64({ alg: 'none', typ: 'JWT', kid })}.${b64(claims)}.`;
    await refused(auth.authenticate({ token: none }), 'bad_token_alg', 'alg none');
    // Key confusion: HMAC keyed with the verification key's public bytes.
    const pubPem = createPublicKey(key).export({ type: 'spki', format: 'pem' });
    const head = `${b64({ alg: 'HS256', typ: 'JWT', kid })}.${b64(claims)}`;
    const hs = `${head}.${createHmac('sha256', pubPem).update(head).digest('base64url')}`;
    await refused(auth.authenticate({ token: hs }), 'bad_token_alg', 'HS256 with the public key');
    await refused(auth.authenticate({ token: await signed(k8s('default', 'web'), { exp: nowS() - 60 }) }), 'token_expired', 'expired');
    await refused(auth.authenticate({ token: await signed(k8s('default', 'web'), { aud: 'kubernetes' }) }), 'bad_audience', 'audience');
    const other = generateKeyPair('ec-p256').privateKey;
    const foreignKid = await new SignJWT(k8s('default', 'web'))
      .setProtectedHeader({ alg: 'ES256', kid: 'not-ours' })
      .setIssuer('meshca-local')
      .setAudience('istio-ca')
      .setExpirationTime('1h')
      .sign(other);
    await refused(auth.authenticate({ token: foreignKid }), 'unknown_token_key', 'foreign kid');
    // Our kid, another key: the signature does not verify.
    const stolenKid = await new SignJWT(k8s('default', 'web'))
      .setProtectedHeader({ alg: 'ES256', kid })
      .setIssuer('meshca-local')
      .setAudience('istio-ca')
      .setExpirationTime('1h')
      .sign(other);
    await refused(auth.authenticate({ token: stolenKid }), 'bad_token_signature', 'our kid, another key');
    await refused(
      auth.authenticate({ token: await signed(k8s('default', 'web'), { iss: 'https://evil.example' }) }),
      'untrusted_issuer',
      'untrusted issuer',
    );
  });
});

describe('token attacks against a JWKS file', () => {
  for (const kind of ['rsa-2048', 'ec-p256'] as const) {
    test(`${kind}: HS256 keyed with the public key, alg none, alg swap and claim injection are refused`, async () => {
      const { privateKey, publicKey } = generateKeyPair(kind);
      const alg = kind === 'rsa-2048' ? 'RS256' : 'ES256';
      const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg, use: 'sig' };
      const path = join(mkdtempSync(join(tmpdir(), 'meshca-jwks-')), 'jwks.json');
      writeFileSync(path, JSON.stringify({ keys: [jwk] }));
      const v = jwksFileVerifier(path, { trustDomain: TD, audience: ['istio-ca'], issuer: 'https://issuer' });
      const claims = {
        'kubernetes.io': { namespace: 'default', serviceaccount: { name: 'web' } },
        iss: 'https://issuer',
        aud: 'istio-ca',
        exp: nowS() + 600,
      };
      const good = await new SignJWT(claims).setProtectedHeader({ alg, kid: 'k1' }).sign(privateKey);
      assert.equal((await v.verify(good)).caller, `spiffe://${TD}/ns/default/sa/web`);

      const hmacKeys = [
        publicKey.export({ type: 'spki', format: 'pem' }),
        publicKey.export({ type: 'spki', format: 'der' }),
        JSON.stringify(jwk),
      ];
      for (const secret of hmacKeys) {
        const head = `${b64({ alg: 'HS256', kid: 'k1' })}.${b64(claims)}`;
        const hs = `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
        await refused(v.verify(hs), 'bad_token_alg', 'HS256 with the public key');
      }
      await refused(v.verify(`${b64({ alg: 'none', kid: 'k1' })}.${b64(claims)}.`), 'bad_token_alg', 'alg none');
      // The header names another asymmetric algorithm than the key's.
      const swapped = `${b64({ alg: alg === 'RS256' ? 'PS256' : 'ES384', kid: 'k1' })}.${b64(claims)}.${good.split('.')[2]}`;
      await refused(v.verify(swapped), 'unknown_token_key', 'alg swap');
      const other = generateKeyPair(kind).privateKey;
      await refused(
        v.verify(await new SignJWT(claims).setProtectedHeader({ alg, kid: 'k2' }).sign(other)),
        'unknown_token_key',
        'foreign kid',
      );
      await refused(
        v.verify(await new SignJWT(claims).setProtectedHeader({ alg, kid: 'k1' }).sign(other)),
        'bad_token_signature',
        'our kid, another key',
      );
      const inject = { ...claims, 'kubernetes.io': { namespace: 'evil/sa/x/ns/istio-system', serviceaccount: { name: 'y' } } };
      await refused(
        v.verify(await new SignJWT(inject).setProtectedHeader({ alg, kid: 'k1' }).sign(privateKey)),
        'bad_namespace',
        'namespace injection',
      );
      const subOnly = { iss: 'https://issuer', aud: 'istio-ca', exp: nowS() + 600, sub: 'system:serviceaccount:Default:web' };
      await refused(
        v.verify(await new SignJWT(subOnly).setProtectedHeader({ alg, kid: 'k1' }).sign(privateKey)),
        'bad_namespace',
        'uppercase namespace in sub',
      );
    });
  }
});

describe('TokenReview usernames', () => {
  const USERS: Record<string, string> = {
    good: 'system:serviceaccount:shop:cart',
    slash: 'system:serviceaccount:evil/sa/x/ns/istio-system:y',
    upper: 'system:serviceaccount:shop:Cart',
    colons: 'system:serviceaccount:shop:cart:extra',
    long: `system:serviceaccount:shop:${'a'.repeat(300)}`,
  };
  const api = createServer((req: IncomingMessage, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      const body = JSON.parse(text) as { spec: { token: string } };
      res.setHeader('content-type', 'application/json');
      const status = { authenticated: true, user: { username: USERS[body.spec.token] ?? 'alice' }, audiences: ['istio-ca'] };
      res.end(JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: body.spec, status }));
    });
  });
  before(() => new Promise<void>((r) => api.listen(0, '127.0.0.1', r)));
  after(() => new Promise<void>((r) => api.close(() => r())));

  test('a username whose names are not Kubernetes names is refused', async () => {
    const kubeconfig = join(mkdtempSync(join(tmpdir(), 'meshca-tr-')), 'kubeconfig');
    const port = (api.address() as AddressInfo).port;
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\ncurrent-context: s\nclusters:\n- name: s\n  cluster: { server: "http://127.0.0.1:${port}" }\nusers:\n- name: u\n  user: { token: t }\ncontexts:\n- name: s\n  context: { cluster: s, user: u }\n`,
    );
    const v = await tokenReviewVerifier({ kubeconfig, trustDomain: TD, audience: ['istio-ca'] });
    assert.equal((await v.verify('good')).caller, `spiffe://${TD}/ns/shop/sa/cart`);
    await refused(v.verify('slash'), 'bad_namespace', 'slash');
    await refused(v.verify('upper'), 'bad_service_account', 'upper');
    await refused(v.verify('colons'), 'no_service_account', 'colons');
    await refused(v.verify('long'), 'bad_service_account', 'long');
  });
});
