import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SignJWT, exportJWK } from 'jose';
import { MeshcaError } from '../pki/errors.js';
import { generateKeyPair } from '../pki/keys.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { LocalTokenIssuer, createAuthenticator } from './index.js';
import { prngInt as prng } from '../../test/helpers/prng.js';

/**
 * Seeded fuzzer for the token path: random and mutated JWTs, huge segments, non-base64, JSON
 * bombs. Each must come back as a rejected MeshcaError 'unauthenticated' (or, for a mutation
 * that changes nothing the signature covers, the original identity), never another exception,
 * and quickly. MESHCA_FUZZ_SEED and MESHCA_FUZZ_ITERATIONS reproduce or extend a run.
 */
const SEED = Number(process.env.MESHCA_FUZZ_SEED ?? 0x7053a);
const ITERATIONS = Number(process.env.MESHCA_FUZZ_ITERATIONS ?? 1500);
const ME = 'spiffe://cluster.local/ns/default/sa/web';
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const enc = (s: string): string => Buffer.from(s).toString('base64url');

test(`seeded fuzz: ${ITERATIONS} hostile tokens are refused unauthenticated and nothing else (seed ${SEED})`, async () => {
  const rand = prng(SEED);
  const store = openSqliteStore(mkdtempSync(join(tmpdir(), 'meshca-fuzz-')));
  const local = await LocalTokenIssuer.open(store);
  const { privateKey, publicKey } = generateKeyPair('ec-p256');
  const jwksFile = join(mkdtempSync(join(tmpdir(), 'meshca-fuzz-jwks-')), 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'j1', alg: 'ES256' }] }));
  const auth = await createAuthenticator({ trustDomain: 'cluster.local', audience: ['istio-ca'], local, jwksFile, issuers: () => [] });
  const valid = [
    await local.issue({ namespace: 'default', serviceAccount: 'web', ttlSeconds: 600, audience: ['istio-ca'] }),
    await new SignJWT({ 'kubernetes.io': { namespace: 'default', serviceaccount: { name: 'web' } } })
      .setProtectedHeader({ alg: 'ES256', kid: 'j1' })
      .setIssuer('https://x')
      .setAudience('istio-ca')
      .setExpirationTime('1h')
      .sign(privateKey),
  ];
  const bomb = (d: number) => enc(`{"iss":"meshca-local","a":${'['.repeat(d)}${']'.repeat(d)}}`);
  const generators: ((i: number) => string)[] = [
    // Byte-level damage to a valid token.
    () => {
      const t = valid[rand(valid.length)].split('');
      for (let k = 1 + rand(4); k > 0; k--) t[rand(t.length)] = String.fromCharCode(rand(2) ? B64.charCodeAt(rand(64)) : rand(128));
      return t.join('');
    },
    () => valid[rand(valid.length)].slice(0, rand(valid[0].length)),
    // Segments swapped between tokens, or repeated.
    () => {
      const [a, b] = [valid[0].split('.'), valid[1].split('.')];
      return [a[0], b[1], a[2]].join('.');
    },
    () => `${valid[rand(2)].split('.').slice(0, 2).join('.')}.${'A'.repeat(rand(200))}`,
    // Random base64url and random bytes.
    () => Array.from({ length: 1 + rand(4) }, () => Array.from({ length: rand(120) }, () => B64[rand(64)]).join('')).join('.'),
    () => Buffer.from(Array.from({ length: rand(200) }, () => rand(256))).toString('latin1'),
    // Huge segments.
    () => `${enc('{"alg":"ES256"}')}.${'A'.repeat(100_000 + rand(1_000_000))}.sig`,
    () => `${'e'.repeat(200_000)}.${enc('{}')}.x`,
    // JSON bombs and odd JSON in header and payload.
    () => `${enc('{"alg":"ES256","kid":"k"}')}.${bomb(1000 + rand(50_000))}.${enc('s')}`,
    () => `${bomb(1000 + rand(50_000))}.${enc('{"iss":"meshca-local"}')}.${enc('s')}`,
    () =>
      `${enc(['null', '[]', '1', '"x"', '{"alg":null}', '{"alg":"ES256","crit":["b64"],"b64":false}', '{"alg":"ES256","jwk":{}}'][rand(7)])}.${enc(['null', '[]', '{"iss":"meshca-local","exp":1e400}', '{"iss":{"x":1}}', '{"iss":"meshca-local","aud":[[]]}'][rand(5)])}.${enc('x')}`,
    // Not base64 at all.
    () => `${'!@#$%^&*()'.repeat(1 + rand(5))}.${'\u00e9\u0000\u{1f600}'.repeat(rand(5))}.==`,
  ];
  let tokens = 0;
  try {
    for (let i = 0; i < ITERATIONS; i++) {
      const g = rand(generators.length);
      const token = generators[g](i);
      const info = `seed ${SEED} iteration ${i} generator ${g}; MESHCA_FUZZ_SEED=${SEED} to reproduce`;
      const started = performance.now();
      let r: unknown;
      assert.doesNotThrow(() => (r = auth.authenticate({ token })), info);
      try {
        const ok = await r;
        assert.equal((ok as { caller: string }).caller, ME, `a mutated token authenticated as someone else (${info})`);
      } catch (e) {
        assert.ok(e instanceof MeshcaError, `${(e as Error)?.name}: ${(e as Error)?.message} (${info})`);
        assert.equal(e.code, 'unauthenticated', `${e.reason}: ${e.message} (${info})`);
        tokens++;
      }
      assert.ok(performance.now() - started < 2000, `slow token (${info})`);
    }
  } finally {
    await store.close();
  }
  assert.ok(tokens > ITERATIONS * 0.9, `${tokens} of ${ITERATIONS} refused`);
});
