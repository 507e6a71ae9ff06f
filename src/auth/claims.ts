import { MeshcaError } from '../pki/errors.js';
import { isMeshcaError } from '../pki/errors.js';
import { namespaceNameProblem, serviceAccountNameProblem, workloadSpiffeId } from '../pki/spiffe.js';

/** The Kubernetes service account a token speaks for. */
export interface ServiceAccountRef {
  namespace: string;
  serviceAccount: string;
}

const SA_USER = /^system:serviceaccount:([^:]+):([^:]+)$/;

/**
 * The names a token gives, checked as Kubernetes names before anything is built from them: a
 * signed token from a lax issuer must not name namespace "evil/sa/x/ns/istio-system".
 */
function checked(ref: ServiceAccountRef): ServiceAccountRef {
  const ns = namespaceNameProblem(ref.namespace);
  if (ns) throw new MeshcaError('unauthenticated', 'bad_namespace', `token names ${ns}`);
  const sa = serviceAccountNameProblem(ref.serviceAccount);
  if (sa) throw new MeshcaError('unauthenticated', 'bad_service_account', `token names ${sa}`);
  return ref;
}

/**
 * Reads the service account from a username such as system:serviceaccount:<ns>:<sa> (TokenReview,
 * `sub`): undefined for another kind of user, a refusal when the names are not Kubernetes names.
 */
export function serviceAccountFromUsername(username: string | undefined): ServiceAccountRef | undefined {
  const m = SA_USER.exec(username ?? '');
  return m ? checked({ namespace: m[1], serviceAccount: m[2] }) : undefined;
}

/**
 * Reads the service account from projected service-account token claims: the `kubernetes.io`
 * claim first (namespace, serviceaccount.name), `sub` as the fallback.
 */
export function serviceAccountFromClaims(payload: Record<string, unknown>): ServiceAccountRef {
  const k8s = payload['kubernetes.io'] as { namespace?: unknown; serviceaccount?: { name?: unknown } } | undefined;
  if (k8s && typeof k8s.namespace === 'string' && typeof k8s.serviceaccount?.name === 'string') {
    return checked({ namespace: k8s.namespace, serviceAccount: k8s.serviceaccount.name });
  }
  const fromSub = serviceAccountFromUsername(typeof payload.sub === 'string' ? payload.sub : undefined);
  if (fromSub) return fromSub;
  throw new MeshcaError(
    'unauthenticated',
    'no_service_account',
    'token names no Kubernetes service account (no kubernetes.io claim and sub is not system:serviceaccount:<ns>:<sa>)',
  );
}

/** The workload SPIFFE ID of a token's service account; a name that cannot form one refuses the token. */
export function identityOf(sa: ServiceAccountRef, trustDomain: string): string {
  try {
    return workloadSpiffeId(trustDomain, sa.namespace, sa.serviceAccount);
  } catch (e) {
    const reason = isMeshcaError(e) ? e.reason : 'bad_service_account';
    throw new MeshcaError(
      'unauthenticated',
      reason,
      `token names a service account that is not a valid identity: ${(e as Error).message}`,
      { cause: e },
    );
  }
}
