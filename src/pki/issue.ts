import type { KeyObject } from 'node:crypto';
import { certLabel, type ParsedCertificate } from './certificate.js';
import { parseCsr, type ParsedCsr } from './csr.js';
import { MeshcaError, invalid, isMeshcaError } from './errors.js';
import type { SubjectAltNames } from './extensions.js';
import type { KeyInfo } from './keys.js';
import { encodePem } from './pem.js';
import { LIBRARY_DECIDES, createLeafFast, leafSignerFor, leafSpki, parseCsrFast, type FastCsr } from './fast/index.js';
import { createLeafCertificate, type LeafResult } from './profiles.js';

/** The CA that signs workloads: its certificate and key, and the chain above it up to the root. */
export interface Signer {
  cert: ParsedCertificate;
  key: KeyObject;
  /** Issuers above `cert`, nearest first, ending with the root (empty when `cert` is the root). */
  chain: ParsedCertificate[];
}

export interface WorkloadRequest {
  csr: string | Uint8Array;
  /** The identities the caller has been authenticated for; every SAN in the CSR must be one of them. */
  identities: string[];
  ttlSeconds: number;
  now: Date;
  serial?: Buffer;
}

export interface IssuedCertificate {
  certDer: Buffer;
  certPem: string;
  /** Leaf first, then intermediates, root last, each PEM. */
  chain: string[];
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  keyInfo: KeyInfo;
  sans: Partial<SubjectAltNames>;
}

/**
 * Refuses any SAN the caller may not claim; returns the one URI to certify. An X.509-SVID carries
 * exactly one SPIFFE ID: the CSR's when it names one, else the caller's primary identity (the
 * others are trust-domain aliases or impersonation candidates, never all at once).
 */
export function authorizeCsrSans(csr: Pick<ParsedCsr, 'sans'>, identities: string[]): string[] {
  const { uris, dnsNames, ipAddresses, emailAddresses, other } = csr.sans;
  const extra = [
    ...dnsNames.map((d) => `DNS:${d}`),
    ...ipAddresses.map((i) => `IP:${i}`),
    ...emailAddresses.map((e) => `email:${e}`),
    ...other,
  ];
  if (extra.length > 0) {
    throw new MeshcaError(
      'permission_denied',
      'san_not_allowed',
      `CSR requests ${extra.join(', ')}; only the caller's SPIFFE identity may be certified`,
    );
  }
  if (uris.length > 1) {
    throw invalid('multiple_uris', `CSR requests ${uris.length} URI SANs (${uris.join(', ')}); an SVID carries exactly one SPIFFE ID`);
  }
  for (const u of uris) {
    if (!identities.includes(u)) {
      throw new MeshcaError(
        'permission_denied',
        'identity_mismatch',
        `CSR requests identity ${u} but the caller is authenticated as ${identities.join(', ') || 'nobody'}`,
      );
    }
  }
  if (uris.length > 0) return uris;
  if (identities.length === 0) throw invalid('no_identity', 'no identity to certify: the CSR has no URI SAN and the caller has none');
  return [identities[0]];
}

/**
 * A workload gets an end-entity certificate only: a CSR asking for CA powers is refused rather than
 * answered with a CA:FALSE leaf, so that the requester learns its request was not granted.
 */
export function refuseCaRequest(csr: Pick<ParsedCsr, 'requestsCA'>): void {
  if (csr.requestsCA) {
    throw invalid(
      'ca_not_allowed',
      'the CSR asks for a CA certificate (basicConstraints CA:TRUE, or keyUsage keyCertSign or cRLSign); workloads get end-entity certificates only',
    );
  }
}

/**
 * The one entry point for workload issuance: CSR in, chain out. Parses and verifies the CSR,
 * checks its SANs against the caller's identities, and signs the leaf profile. A faster encoder
 * can replace the body without touching callers.
 *
 * This is the lean path (src/pki/fast): same checks, errors and certificate bytes as the
 * library path below, several times faster. Requests the lean parser refuses on encoding
 * grounds alone are given to the library path, which decides them as it always has.
 */
export function issueWorkloadCertificate(signer: Signer, req: WorkloadRequest): IssuedCertificate {
  let csr: FastCsr;
  try {
    csr = parseCsrFast(req.csr);
  } catch (e) {
    if (isMeshcaError(e) && LIBRARY_DECIDES.has(e.reason)) return issueWorkloadCertificateLibrary(signer, req);
    throw e;
  }
  refuseCaRequest(csr);
  const uris = authorizeCsrSans(csr, req.identities);
  const leaf = createLeafFast(leafSignerFor(signer.cert, signer.key), {
    spki: leafSpki(csr),
    uris,
    ttlSeconds: req.ttlSeconds,
    now: req.now,
    serial: req.serial,
  });
  return issued(signer, leaf, csr.keyInfo, uris);
}

/** The same issuance on the library encoder (asn1-schema); kept for cross-checks and benchmarks. */
export function issueWorkloadCertificateLibrary(signer: Signer, req: WorkloadRequest): IssuedCertificate {
  const csr = parseCsr(req.csr);
  refuseCaRequest(csr);
  const uris = authorizeCsrSans(csr, req.identities);
  const leaf = createLeafCertificate({
    issuerCert: signer.cert,
    issuerKey: signer.key,
    publicKey: csr.publicKey,
    sans: { uris },
    ttlSeconds: req.ttlSeconds,
    now: req.now,
    serial: req.serial,
  });
  return issued(signer, leaf, csr.keyInfo, uris);
}

function issued(signer: Signer, leaf: LeafResult, keyInfo: KeyInfo, uris: string[]): IssuedCertificate {
  const certPem = encodePem('CERTIFICATE', leaf.der);
  return {
    certDer: leaf.der,
    certPem,
    chain: [certPem, signer.cert.pem, ...signer.chain.map((c) => c.pem)],
    serialHex: leaf.serial.toString('hex').replace(/^(00)+(?=.)/, ''),
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    keyInfo,
    sans: { uris },
  };
}

export function signerLabel(s: Signer): string {
  return certLabel(s.cert);
}
