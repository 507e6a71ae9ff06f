import type { Extension } from '@peculiar/asn1-x509';
import { certLabel, parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { parseCsr, type ParsedCsr } from '../pki/csr.js';
import { MeshcaError, invalid } from '../pki/errors.js';
import { authorityKeyIdExt, basicConstraintsExt, extKeyUsageExt, keyUsageExt, sanExt, subjectKeyIdExt } from '../pki/extensions.js';
import type { Signer } from '../pki/issue.js';
import { keyIdentifier } from '../pki/keys.js';
import { nameFromDer } from '../pki/name.js';
import { DEFAULT_BACKDATE_SECONDS, assertCanIssue, randomSerial, signCertificate } from '../pki/profiles.js';
import { parseSpiffeId } from '../pki/spiffe.js';
import { mapUsages } from './usages.js';

/** The Kubernetes API's floor for spec.expirationSeconds. */
export const MIN_EXPIRATION_SECONDS = 600;

export interface CsrSigningPolicy {
  /** Lifetime when the request gives no expirationSeconds. */
  defaultTtlSeconds: number;
  /** Cap on any lifetime, expirationSeconds included. */
  maxTtlSeconds: number;
  /** Trust domains a SPIFFE URI SAN may be in; other SPIFFE IDs are refused. */
  trustDomains: string[];
}

export interface KubeCsrRequest {
  /** spec.request decoded: the PEM PKCS#10 request. */
  csrPem: string;
  usages: readonly string[];
  expirationSeconds?: number;
  now: Date;
}

export interface SignedKubeCsr {
  cert: ParsedCertificate;
  /** status.certificate: the leaf then the intermediates (no self-signed root), PEM. */
  chainPem: string;
  ttlSeconds: number;
}

/** The lifetime to grant: expirationSeconds (floor 600 s) capped by policy, or the default. */
export function grantedTtl(expirationSeconds: number | undefined, p: CsrSigningPolicy): number {
  if (expirationSeconds === undefined || expirationSeconds === null) return Math.min(p.defaultTtlSeconds, p.maxTtlSeconds);
  if (!Number.isInteger(expirationSeconds) || expirationSeconds < MIN_EXPIRATION_SECONDS) {
    throw invalid('bad_expiration', `spec.expirationSeconds ${expirationSeconds} is below the ${MIN_EXPIRATION_SECONDS}-second minimum`);
  }
  return Math.min(expirationSeconds, p.maxTtlSeconds);
}

/** SANs pass through, but only the kinds a mesh certificate holds, and SPIFFE IDs only of our trust domains. */
function checkSans(csr: ParsedCsr, p: CsrSigningPolicy): void {
  const { uris, dnsNames, ipAddresses, emailAddresses, other } = csr.sans;
  if (other.length > 0)
    throw new MeshcaError(
      'invalid_argument',
      'unsupported_san',
      `the CSR asks for ${other.join(', ')} names; only DNS, IP, URI and email SANs are signed`,
    );
  for (const u of uris) {
    if (!u.startsWith('spiffe://')) continue;
    let td: string;
    try {
      td = parseSpiffeId(u).trustDomain;
    } catch (e) {
      throw invalid('bad_spiffe_id', `URI SAN ${u} is not a valid SPIFFE ID: ${(e as Error).message}`, e);
    }
    if (!p.trustDomains.includes(td)) {
      throw new MeshcaError(
        'permission_denied',
        'foreign_trust_domain',
        `URI SAN ${u} is in trust domain ${td}; this signer certifies ${p.trustDomains.join(', ')}`,
      );
    }
  }
  if (csr.subjectEmpty && uris.length + dnsNames.length + ipAddresses.length + emailAddresses.length === 0) {
    throw invalid('no_identity', 'the CSR has neither a subject nor subject alternative names');
  }
}

/**
 * Signs a Kubernetes CSR as an end-entity certificate: subject and SANs as requested, key usage
 * and EKU from spec.usages (CA powers refused), lifetime from expirationSeconds capped by policy
 * and by the issuer. Every refusal is a MeshcaError whose reason becomes the Failed condition's.
 */
export function signKubeCsr(signer: Signer, req: KubeCsrRequest, p: CsrSigningPolicy): SignedKubeCsr {
  const csr = parseCsr(req.csrPem, 'spec.request');
  if (csr.requestsCA)
    throw new MeshcaError(
      'invalid_argument',
      'ca_not_allowed',
      'the CSR asks for CA powers (basicConstraints CA:TRUE, or keyUsage keyCertSign or cRLSign); this signer issues end-entity certificates only',
    );
  const usages = mapUsages(req.usages);
  checkSans(csr, p);
  const ttlSeconds = grantedTtl(req.expirationSeconds, p);
  assertCanIssue(signer.cert, req.now, false);
  const notBefore = new Date(Math.max(req.now.getTime() - DEFAULT_BACKDATE_SECONDS * 1000, signer.cert.notBefore.getTime()));
  const notAfter = new Date(Math.min(req.now.getTime() + ttlSeconds * 1000, signer.cert.notAfter.getTime()));
  if (notAfter.getTime() <= req.now.getTime())
    throw new MeshcaError('failed_precondition', 'ca_expired', `issuer ${certLabel(signer.cert)} expires now`);

  const exts: Extension[] = [basicConstraintsExt(false)];
  if (usages.keyUsages.length > 0) exts.push(keyUsageExt(usages.keyUsages));
  if (usages.extKeyUsages.length > 0) exts.push(extKeyUsageExt(usages.extKeyUsages));
  const { uris, dnsNames, ipAddresses, emailAddresses } = csr.sans;
  if (uris.length + dnsNames.length + ipAddresses.length + emailAddresses.length > 0) {
    exts.push(sanExt({ uris, dnsNames, ipAddresses, emailAddresses }, csr.subjectEmpty));
  }
  exts.push(subjectKeyIdExt(keyIdentifier(csr.publicKey)));
  const issuerKeyId = signer.cert.ext.subjectKeyId
    ? Buffer.from(signer.cert.ext.subjectKeyId, 'hex')
    : keyIdentifier(signer.cert.publicKey);
  exts.push(authorityKeyIdExt(issuerKeyId));
  const der = signCertificate(
    {
      serial: randomSerial(),
      issuer: nameFromDer(signer.cert.subjectDer),
      subject: nameFromDer(csr.subjectDer),
      notBefore,
      notAfter,
      publicKey: csr.publicKey,
      extensions: exts,
    },
    signer.key,
  );
  const cert = parseCertificate(der, 'signed certificate');
  const intermediates = [signer.cert, ...signer.chain].filter((c) => !c.selfIssued);
  return { cert, chainPem: [cert, ...intermediates].map((c) => c.pem).join(''), ttlSeconds };
}
