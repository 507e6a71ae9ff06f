import type { ParsedCertificate } from '../pki/certificate.js';
import { MeshcaError, invalid } from '../pki/errors.js';
import { isSpiffeId, parseWorkloadId, workloadSpiffeId } from '../pki/spiffe.js';

/** Who the agent asks to be certified as. */
export interface AgentIdentity {
  spiffeId: string;
  namespace?: string;
  serviceAccount?: string;
}

/**
 * The JWT payload, decoded without verifying the signature: the agent only needs to know
 * which identity to put in its CSR; the CA verifies the token and refuses any other identity.
 * Messages never quote the token, which is a secret.
 */
export function decodeJwtPayload(token: string): Record<string, unknown> {
  const parts = token.trim().split('.');
  if (parts.length !== 3 || parts[1] === '') {
    throw invalid('bad_token', `token is not a JWT (expected three dot-separated parts, got ${parts.length})`);
  }
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch (e) {
    throw invalid('bad_token', 'token payload is not base64url-encoded JSON', e);
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw invalid('bad_token', 'token payload is not a JSON object');
  }
  return payload as Record<string, unknown>;
}

const SUB_RE = /^system:serviceaccount:([^:]+):([^:]+)$/;

/**
 * The Istio workload identity a Kubernetes service-account token grants:
 * spiffe://<trust domain>/ns/<namespace>/sa/<service account>. The `kubernetes.io` claim is
 * preferred (it is what the API server's TokenReview reports); `sub` is the fallback, and the
 * two must agree when both are present.
 */
export function identityFromToken(token: string, trustDomain: string): AgentIdentity {
  const claims = decodeJwtPayload(token);
  const k8s = claims['kubernetes.io'] as { namespace?: unknown; serviceaccount?: { name?: unknown } } | undefined;
  const fromClaim =
    k8s && typeof k8s.namespace === 'string' && typeof k8s.serviceaccount?.name === 'string'
      ? { namespace: k8s.namespace, serviceAccount: k8s.serviceaccount.name }
      : undefined;
  const m = typeof claims.sub === 'string' ? SUB_RE.exec(claims.sub) : null;
  const fromSub = m ? { namespace: m[1], serviceAccount: m[2] } : undefined;
  if (fromClaim && fromSub && (fromClaim.namespace !== fromSub.namespace || fromClaim.serviceAccount !== fromSub.serviceAccount)) {
    throw invalid(
      'bad_token',
      `token claims disagree: kubernetes.io names ${fromClaim.namespace}/${fromClaim.serviceAccount} but sub names ${fromSub.namespace}/${fromSub.serviceAccount}`,
    );
  }
  const who = fromClaim ?? fromSub;
  if (!who) {
    throw invalid(
      'bad_token',
      'token names no service account: expected a "kubernetes.io" claim with namespace and serviceaccount.name, or sub "system:serviceaccount:<ns>:<sa>"',
    );
  }
  return { spiffeId: workloadSpiffeId(trustDomain, who.namespace, who.serviceAccount), ...who };
}

/** The identity a previous certificate holds: its one SPIFFE URI SAN. */
export function identityFromCertificate(cert: ParsedCertificate, what = 'certificate'): AgentIdentity {
  const ids = (cert.ext.san?.uris ?? []).filter(isSpiffeId);
  if (ids.length !== 1) {
    throw new MeshcaError(
      'invalid_argument',
      'bad_identity',
      `${what} must carry exactly one SPIFFE URI SAN to renew from, found ${ids.length === 0 ? 'none' : ids.join(', ')}`,
    );
  }
  return identityFromSpiffeId(ids[0]);
}

/** A validated SPIFFE ID, with namespace and service account when it is an Istio workload ID. */
export function identityFromSpiffeId(id: string): AgentIdentity {
  const w = parseWorkloadId(id);
  return { spiffeId: id, ...(w ? { namespace: w.namespace, serviceAccount: w.serviceAccount } : {}) };
}
