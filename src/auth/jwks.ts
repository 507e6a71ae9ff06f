import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { MeshcaError } from '../pki/errors.js';
import { identityOf, serviceAccountFromClaims } from './claims.js';
import { expiryOf, tokenError } from './jose-errors.js';
import type { AuthMethod, AuthResult, TokenVerifier } from './types.js';

export interface JwtVerifierOptions {
  trustDomain: string;
  audience: string[];
  /** Required `iss`; undefined accepts any issuer whose keys are in the set. */
  issuer?: string;
  now?: () => Date;
}

/**
 * Public-key algorithms only: a key set's public keys must never become HMAC secrets (a token
 * signed HS256 with the published key) and `none` is never a signature.
 */
const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** Verifies JWTs against a key set and reads the Kubernetes service account from their claims. */
export function jwtVerifier(method: AuthMethod, keys: () => Promise<JWTVerifyGetKey>, o: JwtVerifierOptions): TokenVerifier {
  return {
    method,
    async verify(token: string): Promise<AuthResult> {
      try {
        const { payload } = await jwtVerify(token, await keys(), {
          issuer: o.issuer,
          audience: o.audience,
          algorithms: ASYMMETRIC_ALGS,
          currentDate: o.now?.(),
        });
        const id = identityOf(serviceAccountFromClaims(payload), o.trustDomain);
        return { identities: [id], caller: id, method, expiresAt: expiryOf(payload) };
      } catch (e) {
        throw tokenError(e, o.audience);
      }
    },
  };
}

/** A JWKS file read once at start; a bad file stops the server rather than refusing every token later. */
export function jwksFileVerifier(path: string, o: JwtVerifierOptions): TokenVerifier {
  let set: JWTVerifyGetKey;
  try {
    set = createLocalJWKSet(JSON.parse(readFileSync(path, 'utf8')));
  } catch (e) {
    throw new MeshcaError('invalid_argument', 'bad_jwks', `JWKS file ${path} is not a readable JSON Web Key Set: ${(e as Error).message}`, {
      cause: e,
    });
  }
  return jwtVerifier('jwks', async () => set, o);
}

/**
 * OIDC discovery: the issuer's /.well-known/openid-configuration names its jwks_uri. Discovery runs
 * on first use and is retried on the next token after a failure, so an issuer that is down at start
 * does not stop the CA; jose caches and refreshes the remote key set itself.
 */
export function oidcVerifier(issuer: string, o: Omit<JwtVerifierOptions, 'issuer'>): TokenVerifier {
  let pending: Promise<JWTVerifyGetKey> | undefined;
  const keys = (): Promise<JWTVerifyGetKey> => {
    pending ??= discover(issuer).catch((e) => {
      pending = undefined;
      throw e;
    });
    return pending;
  };
  return jwtVerifier('oidc', keys, { ...o, issuer });
}

async function discover(issuer: string): Promise<JWTVerifyGetKey> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  let doc: { issuer?: string; jwks_uri?: string };
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    doc = (await res.json()) as typeof doc;
  } catch (e) {
    throw new MeshcaError('unavailable', 'oidc_unavailable', `OIDC discovery at ${url} failed: ${(e as Error).message}`, { cause: e });
  }
  if (doc.issuer !== issuer) {
    throw new MeshcaError(
      'unavailable',
      'oidc_mismatch',
      `OIDC discovery at ${url} names issuer ${JSON.stringify(doc.issuer)}, not ${issuer}`,
    );
  }
  if (typeof doc.jwks_uri !== 'string') throw new MeshcaError('unavailable', 'oidc_mismatch', `OIDC discovery at ${url} has no jwks_uri`);
  return createRemoteJWKSet(new URL(doc.jwks_uri));
}
