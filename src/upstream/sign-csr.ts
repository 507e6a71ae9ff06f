import type { KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, Extensions, SubjectPublicKeyInfo, TBSCertificate, Validity, Version, type Extension } from '@peculiar/asn1-x509';
import { certLabel, parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { sigAlgId, type ParsedCsr } from '../pki/csr.js';
import { MeshcaError, invalid } from '../pki/errors.js';
import { authorityKeyIdExt, basicConstraintsExt, extKeyUsageExt, keyUsageExt, sanExt, subjectKeyIdExt } from '../pki/extensions.js';
import { keyIdentifier, signData, signatureAlgorithmFor, type SignatureAlgorithm } from '../pki/keys.js';
import { nameFromDer } from '../pki/name.js';
import { OID } from '../pki/oids.js';
import { assertCanIssue, randomSerial } from '../pki/profiles.js';

/** What the signed certificate is: a CA with a path length, or an end entity with its EKUs. */
export type CsrProfile = { kind: 'ca'; pathLen: number } | { kind: 'end-entity'; ekus: string[] };

export interface CsrSigning {
  issuerCert: ParsedCertificate;
  issuerKey: KeyObject;
  csr: ParsedCsr;
  profile: CsrProfile;
  notBefore: Date;
  notAfter: Date;
  /** Checked against the issuer's validity window. */
  now: Date;
  /** Default: the algorithm matched to the issuer key (pki's choice). */
  signatureAlgorithm?: SignatureAlgorithm;
  serial?: Buffer;
}

export const SERVER_AND_CLIENT_AUTH = [OID.serverAuth, OID.clientAuth];

/**
 * Signs a CSR keeping its subject Name exactly as requested (pki's profiles rebuild names from a
 * SubjectSpec, which would reorder or drop attributes an upstream must preserve) and with a chosen
 * signature algorithm, which the PCA API lets the caller pick. Used by the local and files
 * upstreams and by the PCA-compatible server.
 */
export function signCsr(s: CsrSigning): ParsedCertificate {
  const isCA = s.profile.kind === 'ca';
  assertCanIssue(s.issuerCert, s.now, isCA);
  if (s.notAfter.getTime() <= s.notBefore.getTime()) throw invalid('bad_lifetime', 'certificate NotAfter must be after NotBefore');
  if (s.notAfter.getTime() > s.issuerCert.notAfter.getTime()) {
    throw invalid(
      'exceeds_issuer',
      `the certificate would outlive its issuer ${certLabel(s.issuerCert)} (NotAfter ${s.issuerCert.notAfter.toISOString()})`,
    );
  }
  const exts: Extension[] = [];
  if (s.profile.kind === 'ca') {
    const issuerPathLen = s.issuerCert.ext.basicConstraints?.pathLen;
    if (issuerPathLen !== undefined && s.profile.pathLen > issuerPathLen - 1) {
      throw new MeshcaError(
        'failed_precondition',
        'pathlen_violation',
        `a CA with pathlen ${s.profile.pathLen} cannot be signed by ${certLabel(s.issuerCert)} (pathlen ${issuerPathLen})`,
      );
    }
    if (s.csr.subjectEmpty) throw invalid('bad_subject', 'a CA certificate needs a subject; the CSR has none');
    exts.push(basicConstraintsExt(true, s.profile.pathLen), keyUsageExt(['digitalSignature', 'keyCertSign', 'cRLSign']));
  } else {
    exts.push(basicConstraintsExt(false), keyUsageExt(['digitalSignature', 'keyEncipherment']));
    if (s.profile.ekus.length > 0) exts.push(extKeyUsageExt(s.profile.ekus));
  }
  // SANs pass through from the CSR, as in PCA's templates (getistio puts email addresses in its CA CSR).
  const { uris, dnsNames, ipAddresses, emailAddresses } = s.csr.sans;
  if (uris.length + dnsNames.length + ipAddresses.length + emailAddresses.length > 0) {
    exts.push(sanExt({ uris, dnsNames, ipAddresses, emailAddresses }, s.csr.subjectEmpty));
  } else if (s.csr.subjectEmpty) {
    throw invalid('no_identity', 'the CSR has neither a subject nor subject alternative names');
  }
  exts.push(subjectKeyIdExt(keyIdentifier(s.csr.publicKey)));
  const issuerKeyId = s.issuerCert.ext.subjectKeyId
    ? Buffer.from(s.issuerCert.ext.subjectKeyId, 'hex')
    : keyIdentifier(s.issuerCert.publicKey);
  exts.push(authorityKeyIdExt(issuerKeyId));

  const alg = s.signatureAlgorithm ?? signatureAlgorithmFor(s.issuerKey);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array(s.serial ?? randomSerial()).buffer,
    signature: sigAlgId(alg),
    issuer: nameFromDer(s.issuerCert.subjectDer),
    validity: new Validity({ notBefore: s.notBefore, notAfter: s.notAfter }),
    subject: nameFromDer(s.csr.subjectDer),
    subjectPublicKeyInfo: AsnConvert.parse(s.csr.spkiDer, SubjectPublicKeyInfo),
    extensions: new Extensions(exts),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = signData(alg, s.issuerKey, tbsDer);
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: sigAlgId(alg),
    signatureValue: new Uint8Array(signature).buffer,
  });
  return parseCertificate(Buffer.from(AsnConvert.serialize(cert)), 'issued certificate');
}
