import type { V1CertificateSigningRequest, V1CertificateSigningRequestCondition } from '@kubernetes/client-node';

/** certificates.k8s.io/v1 CertificateSigningRequest, as the API returns it. */
export type KubeCsr = V1CertificateSigningRequest;
export type CsrCondition = V1CertificateSigningRequestCondition;

export const CSR_PATH = '/apis/certificates.k8s.io/v1/certificatesigningrequests';

/** Where a CSR stands, from its conditions and certificate. */
export type CsrPhase = 'pending' | 'approved' | 'denied' | 'failed' | 'issued';

function has(csr: KubeCsr, type: string): CsrCondition | undefined {
  return csr.status?.conditions?.find((c) => c.type === type && c.status !== 'False');
}

export function csrPhase(csr: KubeCsr): CsrPhase {
  if (has(csr, 'Denied')) return 'denied';
  if (has(csr, 'Failed')) return 'failed';
  if (csr.status?.certificate) return 'issued';
  if (has(csr, 'Approved')) return 'approved';
  return 'pending';
}

export function conditionOf(csr: KubeCsr, type: string): CsrCondition | undefined {
  return has(csr, type);
}

/** spec.request and status.certificate are base64 in JSON; client-node leaves them as strings. */
export function decodeBytes(v: unknown): string {
  if (typeof v !== 'string') return '';
  return Buffer.from(v, 'base64').toString('utf8');
}

export function encodeBytes(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

export function condition(type: string, reason: string, message: string, now: Date): CsrCondition {
  // lastUpdateTime and lastTransitionTime are typed as Date; the serializer writes them as RFC 3339.
  return { type, status: 'True', reason, message, lastUpdateTime: now, lastTransitionTime: now };
}

/** MeshcaError reasons -> CamelCase condition reasons an administrator can act on. */
const FAILED_REASONS: Record<string, string> = {
  unsupported_usage: 'UnsupportedUsage',
  ca_not_allowed: 'CANotAllowed',
  weak_key: 'KeyPolicy',
  bad_key_size: 'KeyPolicy',
  bad_curve: 'KeyPolicy',
  unsupported_key: 'KeyPolicy',
  foreign_trust_domain: 'ForeignTrustDomain',
  bad_spiffe_id: 'BadSANs',
  unsupported_san: 'BadSANs',
  no_identity: 'BadSANs',
  bad_expiration: 'BadExpiration',
};

export function failedReason(meshcaReason: string): string {
  return FAILED_REASONS[meshcaReason] ?? 'BadCSR';
}
