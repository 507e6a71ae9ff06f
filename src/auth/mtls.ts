import { X509Certificate } from 'node:crypto';
import { MeshcaError } from '../pki/errors.js';
import { parseWorkloadId } from '../pki/spiffe.js';
import type { AuthResult } from './types.js';

export interface MtlsOptions {
  /** The CA certificates that issue workload certificates (the current intermediate, and any still trusted). */
  issuers: () => X509Certificate[];
  /** Trust domains a peer identity may be in (the trust domain and its aliases). */
  trustDomains: string[];
  now?: () => Date;
}

const un = (reason: string, msg: string) => new MeshcaError('unauthenticated', reason, msg);

/**
 * Authenticates a renewal by the client certificate. The TLS layer has already checked the chain
 * against our roots; this checks again that the leaf was issued by one of our workload issuers
 * (a certificate from another branch of the same root must not renew here), that it is a
 * current end-entity certificate, and reads its one SPIFFE URI.
 */
export function mtlsIdentity(der: Buffer, o: MtlsOptions): AuthResult {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    throw un('bad_client_cert', 'the client certificate does not parse');
  }
  if (cert.ca) throw un('bad_client_cert', 'the client certificate is a CA certificate');
  const issuer = o.issuers().find((i) => cert.checkIssued(i) && cert.verify(i.publicKey));
  if (!issuer)
    throw un('untrusted_client_cert', `the client certificate (issuer "${cert.issuer.replace(/\n/g, ', ')}") was not issued by this CA`);
  const now = (o.now?.() ?? new Date()).getTime();
  if (now < new Date(cert.validFrom).getTime() || now > new Date(cert.validTo).getTime()) {
    throw un('expired_client_cert', `the client certificate is outside its validity (${cert.validFrom} to ${cert.validTo})`);
  }
  const uris = (cert.subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
  if (uris.length !== 1) throw un('bad_client_cert', `the client certificate has ${uris.length} URI SANs; exactly one SPIFFE ID is needed`);
  let id;
  try {
    id = parseWorkloadId(uris[0]);
  } catch {
    id = undefined;
  }
  if (!id || !o.trustDomains.includes(id.trustDomain)) {
    throw un(
      'bad_client_cert',
      `the client certificate identity ${uris[0]} is not a workload of trust domain ${o.trustDomains.join(' or ')}`,
    );
  }
  return { identities: [uris[0]], caller: uris[0], method: 'mtls', expiresAt: new Date(cert.validTo) };
}
