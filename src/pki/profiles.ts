import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, Extension, Extensions, Name, SubjectPublicKeyInfo, TBSCertificate, Validity, Version } from '@peculiar/asn1-x509';
import { sigAlgId } from './csr.js';
import { MeshcaError, invalid } from './errors.js';
import {
  authorityKeyIdExt,
  basicConstraintsExt,
  extKeyUsageExt,
  keyUsageExt,
  sanExt,
  subjectKeyIdExt,
  type SubjectAltNames,
} from './extensions.js';
import { certLabel, parseCertificate, type ParsedCertificate } from './certificate.js';
import { checkKeyPolicy, describeKey, keyIdentifier, signData, signatureAlgorithmFor, spkiDer } from './keys.js';
import { buildName, isEmptyName, nameFromDer, type SubjectSpec } from './name.js';
import { OID } from './oids.js';

const DAY = 86_400_000;

/** Default back-dating of NotBefore, to absorb clock skew between CA and peers. */
export const DEFAULT_BACKDATE_SECONDS = 60;

/** A random positive serial with 128 bits of randomness (RFC 5280 allows up to 20 octets). */
export function randomSerial(random: (n: number) => Buffer = randomBytes): Buffer {
  const s = random(16);
  // A leading 0x00 before a byte below 0x80 is illegal DER padding (openssl and Node refuse the
  // certificate, once in 256 issuances) and would shrink the serial below 16 octets; a nonzero
  // first byte avoids both and also rules out a zero serial.
  if (s[0] === 0) s[0] = 1;
  return s[0] & 0x80 ? Buffer.concat([Buffer.from([0]), s]) : s;
}

export interface CertificateTemplate {
  serial: Buffer;
  issuer: Name;
  subject: Name;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  extensions: Extension[];
}

/** Encodes and signs a certificate with the library encoder; the signature algorithm follows the signer's key. */
export function signCertificate(t: CertificateTemplate, signerKey: KeyObject): Buffer {
  const alg = signatureAlgorithmFor(signerKey);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array(t.serial).buffer,
    signature: sigAlgId(alg),
    issuer: t.issuer,
    validity: new Validity({ notBefore: t.notBefore, notAfter: t.notAfter }),
    subject: t.subject,
    subjectPublicKeyInfo: AsnConvert.parse(spkiDer(t.publicKey), SubjectPublicKeyInfo),
    extensions: new Extensions(t.extensions),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = signData(alg, signerKey, tbsDer);
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: sigAlgId(alg),
    signatureValue: new Uint8Array(signature).buffer,
  });
  return Buffer.from(AsnConvert.serialize(cert));
}

export interface RootOptions {
  key: KeyObject;
  /** Default like Istio's self-signed root: O=cluster.local. */
  subject?: SubjectSpec;
  days?: number;
  now: Date;
  pathLen?: number;
  serial?: Buffer;
}

export function createRootCertificate(o: RootOptions): ParsedCertificate {
  const publicKey = createPublicKey(o.key);
  checkKeyPolicy(describeKey(publicKey), 'root key');
  const days = o.days ?? 3650;
  if (!(days > 0)) throw invalid('bad_lifetime', `root lifetime must be positive, got ${days} days`);
  const name = buildName(o.subject ?? { organization: ['cluster.local'] });
  if (isEmptyName(name)) throw invalid('bad_subject', 'root subject must not be empty');
  const notBefore = new Date(o.now.getTime() - DEFAULT_BACKDATE_SECONDS * 1000);
  const der = signCertificate(
    {
      serial: o.serial ?? randomSerial(),
      issuer: name,
      subject: name,
      notBefore,
      notAfter: new Date(o.now.getTime() + days * DAY),
      publicKey,
      extensions: [
        basicConstraintsExt(true, o.pathLen),
        keyUsageExt(['keyCertSign', 'cRLSign']),
        subjectKeyIdExt(keyIdentifier(publicKey)),
      ],
    },
    o.key,
  );
  return parseCertificate(der, 'root certificate');
}

/** Refuses to sign with a certificate that cannot issue: not a CA, no keyCertSign, outside its validity window. */
export function assertCanIssue(issuer: ParsedCertificate, now: Date, issuingCA: boolean): void {
  const label = certLabel(issuer);
  if (!issuer.isCA)
    throw new MeshcaError('failed_precondition', 'issuer_not_ca', `issuer ${label} is not a CA (basicConstraints CA:FALSE or missing)`);
  if (issuer.ext.keyUsage && !issuer.ext.keyUsage.usages.includes('keyCertSign')) {
    throw new MeshcaError('failed_precondition', 'issuer_no_keycertsign', `issuer ${label} lacks the keyCertSign key usage`);
  }
  if (now.getTime() > issuer.notAfter.getTime()) {
    throw new MeshcaError('failed_precondition', 'ca_expired', `issuer ${label} expired at ${issuer.notAfter.toISOString()}`);
  }
  if (now.getTime() < issuer.notBefore.getTime()) {
    throw new MeshcaError(
      'failed_precondition',
      'ca_not_yet_valid',
      `issuer ${label} is not valid before ${issuer.notBefore.toISOString()}`,
    );
  }
  if (issuingCA && issuer.ext.basicConstraints?.pathLen === 0) {
    throw new MeshcaError('failed_precondition', 'pathlen_violation', `issuer ${label} has pathlen 0 and cannot sign another CA`);
  }
}

export interface IntermediateOptions {
  issuerCert: ParsedCertificate;
  issuerKey: KeyObject;
  /** The new intermediate's public key. */
  publicKey: KeyObject;
  subject: SubjectSpec;
  days: number;
  now: Date;
  /** Default 0: the mesh CA signs only workloads. */
  pathLen?: number;
  serial?: Buffer;
}

export interface IntermediateResult {
  cert: ParsedCertificate;
  /** True when NotAfter was cut back to the issuer's NotAfter. */
  clamped: boolean;
}

export function createIntermediateCertificate(o: IntermediateOptions): IntermediateResult {
  assertCanIssue(o.issuerCert, o.now, true);
  checkKeyPolicy(describeKey(o.publicKey), 'intermediate key');
  if (!(o.days > 0)) throw invalid('bad_lifetime', `intermediate lifetime must be positive, got ${o.days} days`);
  const pathLen = o.pathLen ?? 0;
  if (!Number.isInteger(pathLen) || pathLen < 0) throw invalid('bad_pathlen', `pathlen must be a non-negative integer, got ${pathLen}`);
  const issuerPathLen = o.issuerCert.ext.basicConstraints?.pathLen;
  if (issuerPathLen !== undefined && pathLen > issuerPathLen - 1) {
    throw new MeshcaError(
      'failed_precondition',
      'pathlen_violation',
      `requested pathlen ${pathLen} but issuer ${certLabel(o.issuerCert)} (pathlen ${issuerPathLen}) allows at most ${issuerPathLen - 1}`,
    );
  }
  const subject = buildName(o.subject);
  if (isEmptyName(subject)) throw invalid('bad_subject', 'intermediate subject must not be empty');
  const wanted = o.now.getTime() + o.days * DAY;
  const notAfter = Math.min(wanted, o.issuerCert.notAfter.getTime());
  const issuerKeyId = o.issuerCert.ext.subjectKeyId
    ? Buffer.from(o.issuerCert.ext.subjectKeyId, 'hex')
    : keyIdentifier(o.issuerCert.publicKey);
  const der = signCertificate(
    {
      serial: o.serial ?? randomSerial(),
      issuer: nameFromDer(o.issuerCert.subjectDer),
      subject,
      notBefore: new Date(Math.max(o.now.getTime() - DEFAULT_BACKDATE_SECONDS * 1000, o.issuerCert.notBefore.getTime())),
      notAfter: new Date(notAfter),
      publicKey: o.publicKey,
      extensions: [
        basicConstraintsExt(true, pathLen),
        keyUsageExt(['digitalSignature', 'keyCertSign', 'cRLSign']),
        subjectKeyIdExt(keyIdentifier(o.publicKey)),
        authorityKeyIdExt(issuerKeyId),
      ],
    },
    o.issuerKey,
  );
  return { cert: parseCertificate(der, 'intermediate certificate'), clamped: notAfter < wanted };
}

export interface LeafOptions {
  issuerCert: ParsedCertificate;
  issuerKey: KeyObject;
  publicKey: KeyObject;
  sans: Partial<SubjectAltNames>;
  subject?: SubjectSpec;
  ttlSeconds: number;
  now: Date;
  backdateSeconds?: number;
  serial?: Buffer;
}

export interface LeafResult {
  der: Buffer;
  serial: Buffer;
  notBefore: Date;
  notAfter: Date;
}

/**
 * The workload leaf profile: CA:FALSE critical, keyUsage digitalSignature+keyEncipherment critical,
 * EKU serverAuth+clientAuth, SANs (critical when the subject is empty), AKI; NotBefore back-dated,
 * NotAfter clamped to the issuer's.
 */
export function createLeafCertificate(o: LeafOptions): LeafResult {
  assertCanIssue(o.issuerCert, o.now, false);
  if (!(o.ttlSeconds > 0)) throw invalid('bad_ttl', `certificate TTL must be positive, got ${o.ttlSeconds}s`);
  const subject = buildName(o.subject ?? {});
  const serial = o.serial ?? randomSerial();
  const notBefore = new Date(
    Math.max(o.now.getTime() - (o.backdateSeconds ?? DEFAULT_BACKDATE_SECONDS) * 1000, o.issuerCert.notBefore.getTime()),
  );
  const notAfter = new Date(Math.min(o.now.getTime() + o.ttlSeconds * 1000, o.issuerCert.notAfter.getTime()));
  const issuerKeyId = o.issuerCert.ext.subjectKeyId
    ? Buffer.from(o.issuerCert.ext.subjectKeyId, 'hex')
    : keyIdentifier(o.issuerCert.publicKey);
  const der = signCertificate(
    {
      serial,
      issuer: nameFromDer(o.issuerCert.subjectDer),
      subject,
      notBefore,
      notAfter,
      publicKey: o.publicKey,
      extensions: [
        basicConstraintsExt(false),
        keyUsageExt(['digitalSignature', 'keyEncipherment']),
        extKeyUsageExt([OID.serverAuth, OID.clientAuth]),
        sanExt(o.sans, isEmptyName(subject)),
        authorityKeyIdExt(issuerKeyId),
      ],
    },
    o.issuerKey,
  );
  return { der, serial, notBefore, notAfter };
}
