import { nativeStatus } from '../../pki/fast/native.js';
import type { Authority } from '../../ca/authority.js';
import type { ParsedCertificate } from '../../pki/certificate.js';
import { invalid } from '../../pki/errors.js';
import type { AuditRecord, Outcome, Store } from '../../store/index.js';

export interface CertSummary {
  subject: string;
  issuer: string;
  serial: string;
  fingerprint256: string;
  keyAlgorithm: string;
  notBefore: string;
  notAfter: string;
  expiresInSeconds: number;
}

export function summarize(c: ParsedCertificate, now: Date): CertSummary {
  return {
    subject: c.subject,
    issuer: c.issuer,
    serial: c.serialHex,
    fingerprint256: c.fingerprint256,
    keyAlgorithm: c.keyInfo.label,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    expiresInSeconds: Math.floor((c.notAfter.getTime() - now.getTime()) / 1000),
  };
}

export interface CaView {
  authority: Authority;
  trustDomain: string;
  cluster: string;
  /** "on", or why issuances are not audited (serve/audit-setting.ts). */
  audit?: string;
  serving?: () => { notAfter: Date; sans: string[] } | undefined;
}

/** GET /v1/ca: the hierarchy from the issuing CA up to the root, with expiry. */
export function caDocument(v: CaView, now: Date): object {
  const s = v.authority.signer;
  const serving = v.serving?.();
  return {
    trustDomain: v.trustDomain,
    cluster: v.cluster,
    ready: v.authority.notReadyReason() === undefined,
    issuingCA: summarize(s.cert, now),
    chain: [s.cert, ...s.chain].map((c) => summarize(c, now)),
    roots: v.authority.roots.map((r) => summarize(r, now)),
    servingCertificate: serving ? { notAfter: serving.notAfter.toISOString(), sans: serving.sans } : null,
    // Whether CSR signatures are checked by the native module or by node:crypto (slower, same verdicts).
    nativeSignatureChecks: nativeStatus,
    audit: v.audit ?? 'on',
  };
}

/** One query parameter; given twice it is refused, since which of the values would count is a guess. */
function single(q: URLSearchParams, name: string): string | null {
  const all = q.getAll(name);
  if (all.length > 1) throw invalid('repeated_parameter', `${name} may be given once, got ${all.length} values`);
  return all[0] ?? null;
}

/** GET /v1/certificates?identity=&limit=&outcome=&reason=: the issuance audit, newest first. */
export async function auditDocument(store: Store, q: URLSearchParams): Promise<object> {
  const limitText = single(q, 'limit');
  let limit = 100;
  if (limitText !== null) {
    // Digits only, and at most four of them, before any conversion: "1e3", "-1", "0x10" and 10^400 are all refused.
    if (!/^\d{1,4}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > 1000)
      throw invalid('bad_limit', `limit must be an integer from 1 to 1000, got "${limitText.slice(0, 40)}"`);
    limit = Number(limitText);
  }
  const outcome = single(q, 'outcome');
  if (outcome !== null && outcome !== 'issued' && outcome !== 'refused')
    throw invalid('bad_outcome', `outcome must be "issued" or "refused", got "${outcome.slice(0, 40)}"`);
  const identity = single(q, 'identity');
  const reason = single(q, 'reason');
  // Rows are written in batches: flush first so that a request just answered is visible here.
  await store.flush();
  const rows = await store.queryAudit({
    identity: identity || undefined,
    outcome: (outcome as Outcome | null) ?? undefined,
    reason: reason || undefined,
    limit,
  });
  return { certificates: rows.map(auditJson) };
}

function auditJson(r: AuditRecord): object {
  return {
    ...r,
    time: r.time.toISOString(),
    notBefore: r.notBefore?.toISOString(),
    notAfter: r.notAfter?.toISOString(),
  };
}
