import type { ParsedCertificate } from './certificate.js';
import type { ChainResult } from './chain.js';
import type { ParsedCsr } from './csr.js';
import type { SubjectAltNames } from './extensions.js';
import { signatureAlgorithmByOid } from './keys.js';
import { isSpiffeId, parseWorkloadId } from './spiffe.js';

/**
 * Human and JSON descriptions of certificates, CSRs and chain checks, for `meshca inspect`.
 * Pure: the clock is a parameter, so "time left" is testable.
 */

export interface KeyDescription {
  algorithm: 'EC' | 'RSA';
  bits: number;
  curve?: string;
  label: string;
}

export interface CertificateDescription {
  role: string;
  subject: string;
  issuer: string;
  serial: string;
  notBefore: string;
  notAfter: string;
  /** Negative once expired. */
  secondsLeft: number;
  timeLeft: string;
  status: 'valid' | 'expired' | 'not yet valid';
  selfSigned: boolean;
  key: KeyDescription;
  signatureAlgorithm: string;
  subjectAltNames: (SubjectAltNames & { critical: boolean }) | null;
  basicConstraints: { ca: boolean; pathLen?: number; critical: boolean } | null;
  keyUsage: { usages: string[]; critical: boolean } | null;
  extendedKeyUsage: { usages: string[]; critical: boolean } | null;
  subjectKeyId: string | null;
  authorityKeyId: string | null;
  fingerprintSha256: string;
}

export interface CsrDescription {
  subject: string;
  key: KeyDescription;
  signatureAlgorithm: string;
  /** parseCsr only returns requests whose self-signature verified. */
  signatureVerified: true;
  subjectAltNames: SubjectAltNames;
  requestsCA: boolean;
}

export interface ChainDescription {
  verified: boolean;
  /** Where the trust anchors came from: "--root FILE", "root-cert.pem", "ROOTCA secret", ... */
  trustedFrom: string;
  root: { subject: string; fingerprintSha256: string } | null;
  problems: string[];
}

export interface IdentityDescription {
  spiffeIds: string[];
  trustDomain?: string;
  namespace?: string;
  serviceAccount?: string;
  /** URI SANs that look like SPIFFE IDs but break the spec. */
  invalid: string[];
}

export interface InspectReport {
  source: string;
  kind: string;
  certificates: CertificateDescription[];
  csrs: CsrDescription[];
  chain: ChainDescription | null;
  identity: IdentityDescription | null;
}

/** openssl's key-identifier style: upper-case hex pairs joined by colons. */
export function colonHex(hex: string): string {
  return hex.toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

/** "364d 23h", "23h 59m", "59m 10s"; expired spans read "expired 2d 3h ago". */
export function formatTimeLeft(ms: number): string {
  const abs = Math.abs(ms);
  const d = Math.floor(abs / 86_400_000);
  const h = Math.floor((abs % 86_400_000) / 3_600_000);
  const m = Math.floor((abs % 3_600_000) / 60_000);
  const s = Math.floor((abs % 60_000) / 1000);
  const span = d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m ${s}s`;
  return ms < 0 ? `expired ${span} ago` : span;
}

function keyDescription(c: { keyInfo: { family: 'ec' | 'rsa'; bits: number; curve?: string; label: string } }): KeyDescription {
  const k = c.keyInfo;
  return { algorithm: k.family === 'ec' ? 'EC' : 'RSA', bits: k.bits, ...(k.curve ? { curve: k.curve } : {}), label: k.label };
}

/** The role a certificate plays at `index` in a presented chain (leaf first). */
export function chainRole(c: ParsedCertificate, index: number): string {
  if (c.selfIssued && c.isCA) return 'root';
  if (index === 0) return c.isCA ? 'signing CA' : 'leaf';
  return c.isCA ? 'intermediate' : 'end entity (misplaced)';
}

export function describeCertificate(c: ParsedCertificate, now: Date, role = chainRole(c, 0)): CertificateDescription {
  const left = c.notAfter.getTime() - now.getTime();
  const status = now < c.notBefore ? 'not yet valid' : left < 0 ? 'expired' : 'valid';
  return {
    role,
    subject: c.subject,
    issuer: c.issuer,
    serial: colonHex(c.serialHex.length % 2 ? `0${c.serialHex}` : c.serialHex),
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    secondsLeft: Math.floor(left / 1000),
    timeLeft: formatTimeLeft(left),
    status,
    selfSigned: c.selfIssued,
    key: keyDescription(c),
    signatureAlgorithm: c.signatureAlgorithm,
    subjectAltNames: c.ext.san ?? null,
    basicConstraints: c.ext.basicConstraints ?? null,
    keyUsage: c.ext.keyUsage ?? null,
    extendedKeyUsage: c.ext.extKeyUsage ?? null,
    subjectKeyId: c.ext.subjectKeyId ? colonHex(c.ext.subjectKeyId) : null,
    authorityKeyId: c.ext.authorityKeyId ? colonHex(c.ext.authorityKeyId) : null,
    fingerprintSha256: c.fingerprint256,
  };
}

export function describeCsr(c: ParsedCsr): CsrDescription {
  return {
    subject: c.subject,
    key: keyDescription(c),
    signatureAlgorithm: signatureAlgorithmByOid(c.signatureAlgorithmOid)?.name ?? c.signatureAlgorithmOid,
    signatureVerified: true,
    subjectAltNames: c.sans,
    requestsCA: c.requestsCA,
  };
}

export function describeChain(r: ChainResult, trustedFrom: string): ChainDescription {
  return {
    verified: r.ok,
    trustedFrom,
    root: r.ok && r.anchor ? { subject: r.anchor.subject, fingerprintSha256: r.anchor.fingerprint256 } : null,
    problems: r.problems,
  };
}

/** The SPIFFE identity carried in URI SANs, with Istio's /ns/<ns>/sa/<sa> split out when present. */
export function describeIdentity(sans: Pick<SubjectAltNames, 'uris'> | undefined): IdentityDescription {
  const uris = sans?.uris ?? [];
  const spiffeIds = uris.filter(isSpiffeId);
  const invalid = uris.filter((u) => /^spiffe:/i.test(u) && !isSpiffeId(u));
  const out: IdentityDescription = { spiffeIds, invalid };
  if (spiffeIds.length === 1) {
    out.trustDomain = /^spiffe:\/\/([^/]+)/.exec(spiffeIds[0])?.[1];
    const w = parseWorkloadId(spiffeIds[0]);
    if (w) {
      out.namespace = w.namespace;
      out.serviceAccount = w.serviceAccount;
    }
  }
  return out;
}

function sanLines(s: SubjectAltNames): string[] {
  return [
    ...s.uris.map((u) => `URI:${u}`),
    ...s.dnsNames.map((d) => `DNS:${d}`),
    ...s.ipAddresses.map((i) => `IP:${i}`),
    ...s.emailAddresses.map((e) => `email:${e}`),
    ...s.other,
  ];
}

const crit = (c: boolean): string => (c ? ' (critical)' : '');

export function renderCertificate(d: CertificateDescription, title: string): string {
  const bc = d.basicConstraints;
  const lines = [
    `${title}: ${d.role}`,
    `  Subject:             ${d.subject || '(empty)'}`,
    `  Issuer:              ${d.issuer || '(empty)'}`,
    `  Serial:              ${d.serial}`,
    `  Not before:          ${d.notBefore}`,
    `  Not after:           ${d.notAfter} (${d.status === 'valid' ? `${d.timeLeft} left` : d.status === 'expired' ? d.timeLeft : 'not yet valid'})`,
    `  Public key:          ${d.key.label}`,
    `  Signature:           ${d.signatureAlgorithm}`,
    `  SANs:                ${d.subjectAltNames ? sanLines(d.subjectAltNames).join(', ') + crit(d.subjectAltNames.critical) : 'none'}`,
    `  Basic constraints:   ${bc ? `CA:${bc.ca ? 'TRUE' : 'FALSE'}${bc.pathLen !== undefined ? `, pathlen:${bc.pathLen}` : ''}${crit(bc.critical)}` : 'none'}`,
    `  Key usage:           ${d.keyUsage ? d.keyUsage.usages.join(', ') + crit(d.keyUsage.critical) : 'none'}`,
    `  Extended key usage:  ${d.extendedKeyUsage ? d.extendedKeyUsage.usages.join(', ') + crit(d.extendedKeyUsage.critical) : 'none'}`,
    `  Subject key id:      ${d.subjectKeyId ?? 'none'}`,
    `  Authority key id:    ${d.authorityKeyId ?? 'none'}`,
    `  SHA-256 fingerprint: ${d.fingerprintSha256}`,
  ];
  return lines.join('\n');
}

export function renderCsr(d: CsrDescription, title: string): string {
  const sans = sanLines({ ...d.subjectAltNames });
  return [
    `${title}: certificate request`,
    `  Subject:             ${d.subject || '(empty)'}`,
    `  Public key:          ${d.key.label}`,
    `  Signature:           ${d.signatureAlgorithm} (verified)`,
    `  SANs:                ${sans.length ? sans.join(', ') : 'none'}`,
    `  Requests CA:         ${d.requestsCA ? 'yes' : 'no'}`,
  ].join('\n');
}

export function renderChain(c: ChainDescription): string {
  if (c.verified && c.root)
    return `Chain: verifies to root "${c.root.subject}" (${c.root.fingerprintSha256}) trusted from ${c.trustedFrom}`;
  // No root at all is not a broken chain: nothing was checked.
  const head =
    c.trustedFrom === 'nothing' ? 'Chain: not verified (no root given):' : `Chain: does NOT verify (trust anchors from ${c.trustedFrom}):`;
  return [head, ...c.problems.map((p) => `  - ${p}`)].join('\n');
}

export function renderIdentity(i: IdentityDescription): string {
  const lines: string[] = [];
  if (i.spiffeIds.length === 0) lines.push('SPIFFE ID: none');
  else if (i.spiffeIds.length > 1) lines.push(`SPIFFE IDs: ${i.spiffeIds.join(', ')} (more than one; Istio expects exactly one)`);
  else {
    const extra = i.namespace ? `, namespace ${i.namespace}, service account ${i.serviceAccount}` : '';
    lines.push(`SPIFFE ID: ${i.spiffeIds[0]} (trust domain ${i.trustDomain}${extra})`);
  }
  for (const u of i.invalid) lines.push(`  invalid SPIFFE URI SAN: ${u}`);
  return lines.join('\n');
}

export function renderReport(r: InspectReport): string {
  const parts = [`Source: ${r.source} (${r.kind})`];
  r.certificates.forEach((c, i) => parts.push(renderCertificate(c, `Certificate #${i + 1}`)));
  r.csrs.forEach((c, i) => parts.push(renderCsr(c, `Request #${i + 1}`)));
  if (r.chain) parts.push(renderChain(r.chain));
  if (r.identity) parts.push(renderIdentity(r.identity));
  return `${parts.join('\n\n')}\n`;
}
