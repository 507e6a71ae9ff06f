import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Extension } from '@peculiar/asn1-x509';
import type { KeyUsage } from '../../resources/certmanager.js';
import { certLabel, parseCertificate, type ParsedCertificate } from '../../pki/certificate.js';
import type { ParsedCsr } from '../../pki/csr.js';
import { invalid } from '../../pki/errors.js';
import {
  authorityKeyIdExt,
  basicConstraintsExt,
  extKeyUsageExt,
  keyUsageExt,
  sanExt,
  subjectKeyIdExt,
  type KeyUsageName,
} from '../../pki/extensions.js';
import { keyIdentifier, keyMatches } from '../../pki/keys.js';
import { nameFromDer } from '../../pki/name.js';
import { OID } from '../../pki/oids.js';
import { assertCanIssue, randomSerial, signCertificate } from '../../pki/profiles.js';

const KU: Partial<Record<KeyUsage, KeyUsageName>> = {
  signing: 'digitalSignature',
  'digital signature': 'digitalSignature',
  'content commitment': 'nonRepudiation',
  'key encipherment': 'keyEncipherment',
  'key agreement': 'keyAgreement',
  'data encipherment': 'dataEncipherment',
  'cert sign': 'keyCertSign',
  'crl sign': 'cRLSign',
  'encipher only': 'encipherOnly',
  'decipher only': 'decipherOnly',
};

const EKU: Partial<Record<KeyUsage, string>> = {
  any: OID.anyExtendedKeyUsage,
  'server auth': OID.serverAuth,
  'client auth': OID.clientAuth,
  'code signing': OID.codeSigning,
  'email protection': OID.emailProtection,
  's/mime': OID.emailProtection,
  'ipsec end system': '1.3.6.1.5.5.7.3.5',
  'ipsec tunnel': '1.3.6.1.5.5.7.3.6',
  'ipsec user': '1.3.6.1.5.5.7.3.7',
  timestamping: '1.3.6.1.5.5.7.3.8',
  'ocsp signing': OID.ocspSigning,
  'microsoft sgc': '1.3.6.1.4.1.311.10.3.3',
  'netscape sgc': '2.16.840.1.113730.4.1',
};

/** cert-manager's defaults: digital signature and key encipherment, plus cert sign for a CA. */
export function effectiveUsages(usages: readonly string[] | undefined, isCA: boolean): KeyUsage[] {
  const base = (usages && usages.length > 0 ? [...usages] : ['digital signature', 'key encipherment']) as KeyUsage[];
  if (isCA && !base.includes('cert sign')) base.push('cert sign');
  return base;
}

export interface CsrTemplate {
  csr: ParsedCsr;
  /** Absent for a self-signed certificate. */
  issuerCert?: ParsedCertificate;
  issuerKey: KeyObject;
  durationMs: number;
  isCA: boolean;
  usages: KeyUsage[];
  now: Date;
}

/**
 * cert-manager's certificate template from a request: subject and SANs from the CSR, CA flag,
 * key usages and duration from the request; NotBefore now, NotAfter clamped to the issuer's
 * (cert-manager's CA issuer does the same rather than fail).
 */
export function signFromTemplate(t: CsrTemplate): ParsedCertificate {
  if (t.issuerCert) assertCanIssue(t.issuerCert, t.now, t.isCA);
  else if (!keyMatches(t.issuerKey, t.csr.publicKey))
    throw invalid('key_mismatch', 'a self-signed certificate must be signed by the key of its own CSR');
  const ku = [...new Set(t.usages.map((u) => KU[u]).filter((u): u is KeyUsageName => !!u))];
  const eku = [...new Set(t.usages.map((u) => EKU[u]).filter((u): u is string => !!u))];
  const { uris, dnsNames, ipAddresses, emailAddresses } = t.csr.sans;
  const exts: Extension[] = [basicConstraintsExt(t.isCA)];
  if (ku.length > 0) exts.push(keyUsageExt(ku));
  if (eku.length > 0) exts.push(extKeyUsageExt(eku));
  if (uris.length + dnsNames.length + ipAddresses.length + emailAddresses.length > 0) {
    exts.push(sanExt({ uris, dnsNames, ipAddresses, emailAddresses }, t.csr.subjectEmpty));
  } else if (t.csr.subjectEmpty) {
    throw invalid('no_identity', 'the request has neither a subject nor subject alternative names');
  }
  exts.push(subjectKeyIdExt(keyIdentifier(t.csr.publicKey)));
  const issuerPublic = t.issuerCert?.publicKey ?? createPublicKey(t.issuerKey);
  const issuerKeyId = t.issuerCert?.ext.subjectKeyId ? Buffer.from(t.issuerCert.ext.subjectKeyId, 'hex') : keyIdentifier(issuerPublic);
  exts.push(authorityKeyIdExt(issuerKeyId));
  const wanted = t.now.getTime() + t.durationMs;
  const notAfter = t.issuerCert ? Math.min(wanted, t.issuerCert.notAfter.getTime()) : wanted;
  const notBefore = t.issuerCert ? Math.max(t.now.getTime(), t.issuerCert.notBefore.getTime()) : t.now.getTime();
  if (notAfter <= notBefore)
    throw invalid('bad_lifetime', `issuer ${t.issuerCert ? certLabel(t.issuerCert) : ''} expires before the certificate could start`);
  const der = signCertificate(
    {
      serial: randomSerial(),
      issuer: t.issuerCert ? nameFromDer(t.issuerCert.subjectDer) : nameFromDer(t.csr.subjectDer),
      subject: nameFromDer(t.csr.subjectDer),
      notBefore: new Date(notBefore),
      notAfter: new Date(notAfter),
      publicKey: t.csr.publicKey,
      extensions: exts,
    },
    t.issuerKey,
  );
  return parseCertificate(der, 'issued certificate');
}
