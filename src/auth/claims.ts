import { MeshcaError } from '../pki/errors.js';
import { workloadSpiffeId } from '../pki/spiffe.js';

/** The Kubernetes service account a token speaks for. */
export interface ServiceAccountRef {
  namespace: string;
  serviceAccount: string;
}

const SA_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;

/** Reads the service account from a username such as system:serviceaccount:<ns>:<sa> (TokenReview, `sub`). */
export function serviceAccountFromUsername(username: string | undefined): ServiceAccountRef | undefined {
  const m = SA_USER.exec(username ?? '');
  return m ? { namespace: m[1], serviceAccount: m[2] } : undefined;
}

/**
 * Reads the service account from projected service-account token claims: the `kubernetes.io`
 * claim first (namespace, serviceaccount.name), `sub` as the fallback.
 */
export function serviceAccountFromClaims(payload: Record<string, unknown>): ServiceAccountRef {
  const k8s = payload['kubernetes.io'] as { namespace?: unknown; serviceaccount?: { name?: unknown } } | undefined;
  if (k8s && typeof k8s.namespace === 'string' && typeof k8s.serviceaccount?.name === 'string') {
    return { namespace: k8s.namespace, serviceAccount: k8s.serviceaccount.name };
  }
  const fromSub = serviceAccountFromUsername(typeof payload.sub === 'string' ? payload.sub : undefined);
  if (fromSub) return fromSub;
  throw new MeshcaError('unauthenticated', 'no_service_account', 'token names no Kubernetes service account (no kubernetes.io claim and sub is not system:serviceaccount:<ns>:<sa>)');
}

export function identityOf(sa: ServiceAccountRef, trustDomain: string): string {
  try {
    return workloadSpiffeId(trustDomain, sa.namespace, sa.serviceAccount);
  } catch (e) {
    throw new MeshcaError('unauthenticated', 'bad_service_account', `token names service account ${sa.namespace}/${sa.serviceAccount}, which is not a valid identity: ${(e as Error).message}`, { cause: e });
  }
}
