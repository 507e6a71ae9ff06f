import { MeshcaError } from '../pki/errors.js';
import { identityOf, serviceAccountFromUsername } from './claims.js';
import { tokenReviewClient, type ReviewFn } from './kube-client.js';
import type { AuthResult, TokenVerifier } from './types.js';

export interface TokenReviewOptions {
  /** Path of a kubeconfig, or "in-cluster" for the pod's own service account. */
  kubeconfig: string;
  trustDomain: string;
  audience: string[];
  now?: () => Date;
}

/**
 * A TokenReview answer is cached briefly only: the API server revokes a bound token when its pod
 * goes away, and only the API server knows.
 */
export const TOKEN_REVIEW_CACHE_SECONDS = 60;

/** Asks the Kubernetes API server whether a token is valid, for tokens no local key can check. */
export async function tokenReviewVerifier(o: TokenReviewOptions): Promise<TokenVerifier & { via: string }> {
  const { review, via } = await tokenReviewClient(o.kubeconfig);
  return { method: 'token-review', via, verify: (token) => verifyWith(review, token, o) };
}

async function verifyWith(review: ReviewFn, token: string, o: TokenReviewOptions): Promise<AuthResult> {
  let status;
  try {
    status = await review(token, o.audience);
  } catch (e) {
    throw new MeshcaError(
      'unavailable',
      'token_review_unavailable',
      `TokenReview against the Kubernetes API failed: ${(e as Error).message}`,
      { cause: e },
    );
  }
  if (!status?.authenticated) {
    throw new MeshcaError(
      'unauthenticated',
      'token_review_denied',
      `the Kubernetes API rejected the token${status?.error ? `: ${status.error}` : ''}`,
    );
  }
  // An authenticated review without status.audiences means the token is valid for the API server's
  // own audience only (an audience-unaware authenticator): not for istio-ca. Istio refuses it too.
  if (!status.audiences || status.audiences.length === 0) {
    throw new MeshcaError(
      'unauthenticated',
      'bad_audience',
      `the Kubernetes API did not confirm the token for audience ${o.audience.join(', ')} (no status.audiences in the TokenReview)`,
    );
  }
  if (!status.audiences.some((a) => o.audience.includes(a))) {
    throw new MeshcaError(
      'unauthenticated',
      'bad_audience',
      `token audiences ${status.audiences.join(', ')} do not include ${o.audience.join(', ')}`,
    );
  }
  const sa = serviceAccountFromUsername(status.user?.username);
  if (!sa)
    throw new MeshcaError(
      'unauthenticated',
      'no_service_account',
      `token belongs to ${status.user?.username ?? 'nobody'}, not a service account`,
    );
  const id = identityOf(sa, o.trustDomain);
  const now = o.now?.() ?? new Date();
  return { identities: [id], caller: id, method: 'token-review', expiresAt: new Date(now.getTime() + TOKEN_REVIEW_CACHE_SECONDS * 1000) };
}
