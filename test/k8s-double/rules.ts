// The write rules of certificates.k8s.io/v1 CSRs as the API server enforces them (validation,
// /approval, /status), and replace semantics per resource.
import { ApiError, type KubeObject } from './store.js';

type Condition = { type: string; status?: string; reason?: string; message?: string };

function conditions(o: object): Condition[] {
  return (((o as { status?: unknown }).status as { conditions?: Condition[] } | undefined)?.conditions ?? []).slice();
}

const APPROVAL = new Set(['Approved', 'Denied']);

export function validateCsr(o: KubeObject): void {
  const spec = (o.spec ?? {}) as { request?: unknown; signerName?: unknown; usages?: unknown; expirationSeconds?: unknown };
  const bad = (m: string) =>
    new ApiError(
      422,
      'Invalid',
      `CertificateSigningRequest.certificates.k8s.io "${o.metadata.name ?? o.metadata.generateName}" is invalid: ${m}`,
    );
  if (typeof spec.request !== 'string') throw bad('spec.request: Required value');
  if (!/-----BEGIN CERTIFICATE REQUEST-----/.test(Buffer.from(spec.request, 'base64').toString('utf8')))
    throw bad('spec.request: Invalid value: []byte{...}: PEM block type must be CERTIFICATE REQUEST');
  if (typeof spec.signerName !== 'string' || !/^[a-z0-9.-]+\/[A-Za-z0-9._/-]+$/.test(spec.signerName))
    throw bad('spec.signerName: Required value');
  if (!Array.isArray(spec.usages) || spec.usages.length === 0) throw bad('spec.usages: Required value');
  if (spec.expirationSeconds !== undefined && !(Number(spec.expirationSeconds) >= 600))
    throw bad('spec.expirationSeconds: Invalid value: may not specify a duration less than 600 seconds (10 minutes)');
}

/** PUT /approval: only the Approved and Denied conditions change. */
export function approval(cur: KubeObject, body: Record<string, unknown>): KubeObject {
  const wanted = conditions(body).filter((c) => APPROVAL.has(c.type));
  const types = new Set(wanted.map((c) => c.type));
  if (types.has('Approved') && types.has('Denied'))
    throw new ApiError(422, 'Invalid', 'status.conditions: Invalid value: Approved and Denied conditions are mutually exclusive');
  const kept = conditions(cur).filter((c) => !APPROVAL.has(c.type));
  return { ...cur, status: { ...((cur.status as object) ?? {}), conditions: [...wanted, ...kept] } };
}

/** PUT /status: the certificate and the conditions other than Approved/Denied. */
export function statusUpdate(cur: KubeObject, body: Record<string, unknown>): KubeObject {
  const next = (body.status ?? {}) as { certificate?: string; conditions?: Condition[] };
  const curCert = (cur.status as { certificate?: string } | undefined)?.certificate;
  const approval = conditions(cur).filter((c) => APPROVAL.has(c.type));
  const cert = next.certificate;
  if (cert !== undefined && cert !== '') {
    if (curCert && curCert !== cert)
      throw new ApiError(422, 'Invalid', 'status.certificate: Forbidden: updates may not modify existing certificate content');
    const text = Buffer.from(cert, 'base64').toString('utf8');
    if (!/^(\s*-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\s*)+$/.test(text)) {
      throw new ApiError(
        422,
        'Invalid',
        'status.certificate: Invalid value: "<certificate data>": must contain at least one CERTIFICATE PEM block and nothing else',
      );
    }
    if (!approval.some((c) => c.type === 'Approved' && c.status === 'True')) {
      throw new ApiError(422, 'Invalid', 'status.certificate: Forbidden: certificate may only be set on an approved request');
    }
  } else if (curCert) {
    throw new ApiError(422, 'Invalid', 'status.certificate: Forbidden: updates may not remove existing certificate content');
  }
  const others = (next.conditions ?? []).filter((c) => !APPROVAL.has(c.type));
  return { ...cur, status: { ...(cert ? { certificate: cert } : {}), conditions: [...approval, ...others] } };
}

/** PUT on the object itself: secrets, configmaps and leases take the body; a CSR keeps its status. */
export function replace(resource: string, cur: KubeObject, body: Record<string, unknown>): KubeObject {
  const next = body as KubeObject;
  if (resource === 'certificatesigningrequests') return { ...next, spec: cur.spec, status: cur.status };
  return { ...next, metadata: { ...next.metadata, name: cur.metadata.name } };
}
