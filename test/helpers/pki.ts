import type { KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { parseCertificate, type ParsedCertificate } from '../../src/pki/certificate.js';
import {
  authorityKeyIdExt,
  basicConstraintsExt,
  extKeyUsageExt,
  keyUsageExt,
  sanExt,
  subjectKeyIdExt,
  type KeyUsageName,
} from '../../src/pki/extensions.js';
import { generateKeyPair, keyIdentifier, type KeyAlgorithm } from '../../src/pki/keys.js';
import { buildName, nameFromDer } from '../../src/pki/name.js';
import { OID } from '../../src/pki/oids.js';
import {
  createIntermediateCertificate,
  createLeafCertificate,
  createRootCertificate,
  randomSerial,
  signCertificate,
} from '../../src/pki/profiles.js';

/**
 * Fixture builders for PKI tests: small functions with options, instead of long literals
 * (cert-manager's `gen` style). Keys are EC P-256 unless asked, because RSA generation is slow.
 */

/** A fixed clock so expiry arithmetic in tests is exact. */
export const NOW = new Date('2025-06-01T12:00:00Z');
export const DAY = 86_400_000;

export interface Ca {
  cert: ParsedCertificate;
  key: KeyObject;
}

export function daysFrom(now: Date, days: number): Date {
  return new Date(now.getTime() + days * DAY);
}

export function makeRoot(o: { alg?: KeyAlgorithm; now?: Date; days?: number; pathLen?: number; cn?: string } = {}): Ca {
  const kp = generateKeyPair(o.alg ?? 'ec-p256');
  const cert = createRootCertificate({
    key: kp.privateKey,
    now: o.now ?? NOW,
    days: o.days ?? 3650,
    pathLen: o.pathLen,
    subject: { organization: ['meshca-test'], commonName: o.cn ?? 'Test Root' },
  });
  return { cert, key: kp.privateKey };
}

export function makeIntermediate(
  issuer: Ca,
  o: { alg?: KeyAlgorithm; now?: Date; days?: number; pathLen?: number; cn?: string } = {},
): Ca & { clamped: boolean } {
  const kp = generateKeyPair(o.alg ?? 'ec-p256');
  const r = createIntermediateCertificate({
    issuerCert: issuer.cert,
    issuerKey: issuer.key,
    publicKey: kp.publicKey,
    subject: { organization: ['meshca-test'], commonName: o.cn ?? 'Test Intermediate' },
    days: o.days ?? 365,
    pathLen: o.pathLen,
    now: o.now ?? NOW,
  });
  return { cert: r.cert, key: kp.privateKey, clamped: r.clamped };
}

export function makeLeaf(
  issuer: Ca,
  o: { spiffeId?: string; now?: Date; ttlSeconds?: number; alg?: KeyAlgorithm; serial?: Buffer } = {},
): Ca {
  const kp = generateKeyPair(o.alg ?? 'ec-p256');
  const r = createLeafCertificate({
    issuerCert: issuer.cert,
    issuerKey: issuer.key,
    publicKey: kp.publicKey,
    sans: { uris: [o.spiffeId ?? 'spiffe://cluster.local/ns/default/sa/web'] },
    ttlSeconds: o.ttlSeconds ?? 3600,
    now: o.now ?? NOW,
    serial: o.serial,
  });
  return { cert: parseCertificate(r.der, 'leaf'), key: kp.privateKey };
}

export interface CustomCaOptions {
  /** Signs the certificate; omit for a self-signed one. */
  issuer?: Ca;
  cn: string;
  ca?: boolean;
  pathLen?: number;
  keyUsage?: KeyUsageName[];
  /** Replace the AKI with this value (to break AKI/SKI linkage). */
  authorityKeyId?: Buffer;
  notBefore?: Date;
  notAfter?: Date;
  uris?: string[];
  alg?: KeyAlgorithm;
  /** Sign with this key instead of the issuer's (to break the signature). */
  signWith?: KeyObject;
}

/**
 * A certificate with exactly the extensions asked for, bypassing the profile checks, for the
 * broken CAs and chains that verification must reject.
 */
export function makeCustom(o: CustomCaOptions): Ca {
  const kp = generateKeyPair(o.alg ?? 'ec-p256');
  const subject = buildName({ organization: ['meshca-test'], commonName: o.cn });
  const exts = [basicConstraintsExt(o.ca ?? true, o.pathLen)];
  if (o.keyUsage) exts.push(keyUsageExt(o.keyUsage));
  exts.push(subjectKeyIdExt(keyIdentifier(kp.publicKey)));
  if (o.issuer || o.authorityKeyId) {
    exts.push(authorityKeyIdExt(o.authorityKeyId ?? keyIdentifier(o.issuer!.cert.publicKey)));
  }
  if (o.uris) {
    exts.push(extKeyUsageExt([OID.serverAuth, OID.clientAuth]));
    exts.push(sanExt({ uris: o.uris }, false));
  }
  const der = signCertificate(
    {
      serial: randomSerial(),
      // The issuer's exact subject encoding, so name chaining is byte-identical.
      issuer: o.issuer ? nameFromDer(o.issuer.cert.subjectDer) : subject,
      subject,
      notBefore: o.notBefore ?? new Date(NOW.getTime() - DAY),
      notAfter: o.notAfter ?? daysFrom(NOW, 365),
      publicKey: kp.publicKey,
      extensions: exts,
    },
    o.signWith ?? o.issuer?.key ?? kp.privateKey,
  );
  return { cert: parseCertificate(der, o.cn), key: kp.privateKey };
}

/** Every extension's OID mapped to its criticality, read from the DER independently of parseExtensions. */
export function extensionCriticality(der: Uint8Array): Map<string, boolean> {
  const cert = AsnConvert.parse(der, Certificate);
  return new Map((cert.tbsCertificate.extensions ?? []).map((e) => [e.extnID, e.critical]));
}

/** The serial's DER INTEGER content octets, as encoded (not re-normalised). */
export function serialOctets(der: Uint8Array): Buffer {
  return Buffer.from(AsnConvert.parse(der, Certificate).tbsCertificate.serialNumber);
}
