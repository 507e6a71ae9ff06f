import type { X509Certificate } from 'node:crypto';
import { decodeJwt } from 'jose';
import { MeshcaError, isMeshcaError } from '../pki/errors.js';
import { TokenCache } from './cache.js';
import { jwksFileVerifier, oidcVerifier } from './jwks.js';
import { LOCAL_ISSUER, type LocalTokenIssuer } from './local-issuer.js';
import { mtlsIdentity } from './mtls.js';
import { tokenReviewVerifier } from './token-review.js';
import type { AuthResult, Authenticator, Credentials, TokenVerifier } from './types.js';

export * from './types.js';
export { LocalTokenIssuer, LOCAL_ISSUER, type TokenRequest } from './local-issuer.js';
export { TokenCache } from './cache.js';
export { mtlsIdentity } from './mtls.js';
export { serviceAccountFromClaims, serviceAccountFromUsername, identityOf } from './claims.js';

export interface AuthenticatorOptions {
  trustDomain: string;
  trustDomainAliases?: string[];
  audience: string[];
  /** The local issuer, when its tokens are accepted. */
  local?: LocalTokenIssuer;
  jwksFile?: string;
  jwksIssuer?: string;
  oidcIssuer?: string;
  kubeconfig?: string;
  /** Workload-issuing CA certificates, for mTLS renewals. */
  issuers: () => X509Certificate[];
  now?: () => Date;
  cacheSize?: number;
}

interface Route {
  /** `iss` is null for a token that is not a JWT at all. */
  accepts(iss: string | undefined | null): boolean;
  verifier: TokenVerifier;
}

const un = (reason: string, msg: string) => new MeshcaError('unauthenticated', reason, msg);

/**
 * Tries a client certificate first (renewals), then the bearer token, routed by its `iss` to the
 * one verifier that can check it. A token no verifier claims is refused, never passed around.
 */
export async function createAuthenticator(o: AuthenticatorOptions): Promise<Authenticator> {
  const now = o.now ?? (() => new Date());
  const base = { trustDomain: o.trustDomain, audience: o.audience, now };
  const routes: Route[] = [];
  // Only the API server might know a token that is not a JWT, so only TokenReview accepts iss === null.
  if (o.local) routes.push({ accepts: (iss) => iss === LOCAL_ISSUER, verifier: o.local.verifier(base) });
  if (o.oidcIssuer) {
    const issuer = o.oidcIssuer;
    routes.push({ accepts: (iss) => iss === issuer, verifier: oidcVerifier(issuer, base) });
  }
  if (o.jwksFile) {
    const issuer = o.jwksIssuer;
    routes.push({
      accepts: (iss) => iss !== null && iss !== LOCAL_ISSUER && (!issuer || iss === issuer),
      verifier: jwksFileVerifier(o.jwksFile, { ...base, issuer }),
    });
  }
  if (o.kubeconfig)
    routes.push({ accepts: (iss) => iss !== LOCAL_ISSUER, verifier: await tokenReviewVerifier({ ...base, kubeconfig: o.kubeconfig }) });
  const cache = new TokenCache(o.cacheSize);
  const trustDomains = [o.trustDomain, ...(o.trustDomainAliases ?? [])];

  async function verifyFresh(token: string): Promise<AuthResult> {
    let iss: string | undefined | null;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      iss = null;
    }
    const candidates = routes.filter((r) => r.accepts(iss));
    if (iss === null && candidates.length === 0) throw un('malformed_token', 'the bearer token is not a JWT');
    if (candidates.length === 0) {
      throw un(
        'untrusted_issuer',
        `token issuer ${JSON.stringify(iss ?? null)} is not trusted (configure --jwks-file, --oidc-issuer or --kubeconfig)`,
      );
    }
    let last: unknown;
    for (const c of candidates) {
      try {
        const r = await c.verifier.verify(token);
        cache.set(token, r);
        return r;
      } catch (e) {
        last = e;
        // A key set that does not know the key may not be the token's issuer: let the next one try.
        if (!(isMeshcaError(e) && e.reason === 'unknown_token_key')) throw e;
      }
    }
    throw last;
  }

  function authenticate(c: Credentials): AuthResult | Promise<AuthResult> {
    if (c.peerCertDer) {
      try {
        return mtlsIdentity(c.peerCertDer, { issuers: o.issuers, trustDomains, now });
      } catch (e) {
        if (!c.token) throw e;
      }
    }
    if (!c.token) throw un('no_credentials', 'no bearer token in the authorization header and no client certificate from this CA');
    // A token verified before answers at once: no promise, no turn of the microtask queue.
    return cache.get(c.token, now()) ?? verifyFresh(c.token);
  }

  return {
    authenticate(c: Credentials): AuthResult | Promise<AuthResult> {
      try {
        return authenticate(c);
      } catch (e) {
        return Promise.reject(e);
      }
    },
  };
}

/** Reads `authorization: Bearer <token>`; anything else is no token at all. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}
