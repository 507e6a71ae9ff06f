import { errors } from 'jose';
import { MeshcaError } from '../pki/errors.js';

/** Maps jose's verification failures to UNAUTHENTICATED with a reason an operator can act on. */
export function tokenError(e: unknown, audiences: string[]): MeshcaError {
  if (e instanceof MeshcaError) return e;
  const un = (reason: string, msg: string) => new MeshcaError('unauthenticated', reason, msg, { cause: e });
  if (e instanceof errors.JWTExpired) {
    const exp = typeof e.payload.exp === 'number' ? ` at ${new Date(e.payload.exp * 1000).toISOString()}` : '';
    return un('token_expired', `token expired${exp}`);
  }
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === 'aud')
      return un(
        'bad_audience',
        `token audience ${JSON.stringify(e.payload.aud ?? null)} is not one of the accepted audiences ${audiences.join(', ')}`,
      );
    if (e.claim === 'nbf') return un('token_not_yet_valid', 'token is not valid yet (nbf in the future)');
    if (e.claim === 'iss') return un('bad_issuer', `token issuer ${JSON.stringify(e.payload.iss ?? null)} is not the expected one`);
    return un('bad_token_claims', `token claim "${e.claim}" is invalid: ${e.message}`);
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) return un('bad_token_signature', 'token signature does not verify');
  if (e instanceof errors.JWKSNoMatchingKey) return un('unknown_token_key', 'token is signed by a key the issuer does not publish');
  if (e instanceof errors.JOSEAlgNotAllowed || e instanceof errors.JOSENotSupported)
    return un('bad_token_alg', 'token signature algorithm is not allowed');
  if (e instanceof errors.JWTInvalid || e instanceof errors.JWSInvalid) return un('malformed_token', `token is malformed: ${e.message}`);
  if (e instanceof errors.JWKSTimeout)
    return new MeshcaError('unavailable', 'jwks_unavailable', 'timed out fetching the token issuer keys', { cause: e });
  return un('bad_token', `token rejected: ${(e as Error)?.message ?? String(e)}`);
}

/** When a JWT payload's exp falls, for caching. */
export function expiryOf(payload: { exp?: number }): Date | undefined {
  return typeof payload.exp === 'number' ? new Date(payload.exp * 1000) : undefined;
}
