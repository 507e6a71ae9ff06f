import { isIPv6 } from 'node:net';
import type { KeyObject } from 'node:crypto';
import { parseCertificates, type ParsedCertificate } from '../../pki/certificate.js';
import { describeKey, keyMatches, parsePrivateKeyPem } from '../../pki/keys.js';
import { nameFromDer, nameValues } from '../../pki/name.js';
import { OID } from '../../pki/oids.js';
import {
  certificateDurationMs,
  normalizeIssuerRef,
  type Certificate,
  type CertificateRequest,
  type CertificateSpec,
} from '../../resources/certmanager.js';
import { parseGoDuration } from '../../resources/duration.js';
import type { StoredSecret } from '../../resources/secrets.js';
import { desiredKey } from './keys.js';

/** A reason (machine) and message (human), as cert-manager's trigger and readiness policies return them. */
export interface Verdict {
  reason: string;
  message: string;
}

export const ANNOTATIONS = {
  certificateName: 'cert-manager.io/certificate-name',
  issuerName: 'cert-manager.io/issuer-name',
  issuerKind: 'cert-manager.io/issuer-kind',
  issuerGroup: 'cert-manager.io/issuer-group',
  revision: 'cert-manager.io/certificate-revision',
  privateKeySecret: 'cert-manager.io/private-key-secret-name',
  commonName: 'cert-manager.io/common-name',
  altNames: 'cert-manager.io/alt-names',
  ipSans: 'cert-manager.io/ip-sans',
  uriSans: 'cert-manager.io/uri-sans',
} as const;

/**
 * cert-manager's renewal time: notAfter - renewBefore, where renewBefore is the spec's when it
 * fits in the actual lifetime, else renewBeforePercentage of it, else a third of it; truncated to
 * the second.
 */
export function renewalTime(notBefore: Date, notAfter: Date, spec: Pick<CertificateSpec, 'renewBefore' | 'renewBeforePercentage'>): Date {
  const actual = notAfter.getTime() - notBefore.getTime();
  let before = actual / 3;
  const rb = spec.renewBefore !== undefined ? parseGoDuration(spec.renewBefore) : undefined;
  if (rb !== undefined && rb < actual) before = rb;
  else if (spec.renewBeforePercentage !== undefined) before = (actual * spec.renewBeforePercentage) / 100;
  const t = notAfter.getTime() - before;
  return new Date(Math.floor(t / 1000) * 1000);
}

/** What is in a certificate's secret, parsed once. */
export interface SecretView {
  chain: ParsedCertificate[];
  key: KeyObject;
}

/**
 * cert-manager's readiness chain (DoesNotExist, MissingData, InvalidKeyPair, IncorrectIssuer,
 * SecretMismatch, RequestChanged, Expired). A verdict means "not Ready, and reissue".
 */
export function checkSecret(
  cert: Certificate,
  secret: StoredSecret | undefined,
  currentRequest: CertificateRequest | undefined,
  now: Date,
): { verdict?: Verdict; view?: SecretView } {
  if (!secret) return { verdict: { reason: 'DoesNotExist', message: 'Issuing certificate as Secret does not exist' } };
  const keyPem = secret.data['tls.key'];
  const certPem = secret.data['tls.crt'];
  if (!keyPem || keyPem.length === 0)
    return { verdict: { reason: 'MissingData', message: 'Issuing certificate as Secret does not contain a private key' } };
  if (!certPem || certPem.length === 0)
    return { verdict: { reason: 'MissingData', message: 'Issuing certificate as Secret does not contain a certificate' } };
  let key: KeyObject;
  try {
    key = parsePrivateKeyPem(keyPem, 'tls.key');
  } catch (e) {
    return {
      verdict: {
        reason: 'InvalidKeyPair',
        message: `Issuing certificate as Secret contains invalid private key data: ${(e as Error).message}`,
      },
    };
  }
  let chain: ParsedCertificate[];
  try {
    chain = parseCertificates(certPem.toString('utf8'), 'tls.crt');
  } catch (e) {
    return {
      verdict: {
        reason: 'InvalidCertificate',
        message: `Issuing certificate as Secret contains an invalid certificate: ${(e as Error).message}`,
      },
    };
  }
  const leaf = chain[0];
  if (!keyMatches(key, leaf.publicKey)) {
    return {
      verdict: {
        reason: 'InvalidKeyPair',
        message: 'Issuing certificate as Secret contains a private key that does not match the certificate',
      },
    };
  }
  const view = { chain, key };
  const ann = secret.annotations ?? {};
  const ref = normalizeIssuerRef(cert.spec.issuerRef);
  const name = ann[ANNOTATIONS.issuerName];
  const kind = ann[ANNOTATIONS.issuerKind] || 'Issuer';
  const group = ann[ANNOTATIONS.issuerGroup] || 'cert-manager.io';
  if (name !== undefined && (name !== ref.name || kind !== ref.kind || group !== ref.group)) {
    return {
      view,
      verdict: { reason: 'IncorrectIssuer', message: `Issuing certificate as Secret was previously issued by "${kind}.${group}/${name}"` },
    };
  }
  const keyViolations = keyMismatches(cert.spec, key);
  if (keyViolations.length > 0) {
    return {
      view,
      verdict: { reason: 'SecretMismatch', message: `Existing private key is not up to date for spec: [${keyViolations.join(' ')}]` },
    };
  }
  const violations = specMismatches(cert.spec, leaf);
  if (violations.length > 0) {
    return {
      view,
      verdict: {
        reason: 'SecretMismatch',
        message: `Issuing certificate as Existing issued Secret is not up to date for spec: [${violations.join(' ')}]`,
      },
    };
  }
  const requestViolations = currentRequest ? requestMismatches(cert.spec, currentRequest) : [];
  if (requestViolations.length > 0) {
    return {
      view,
      verdict: {
        reason: 'RequestChanged',
        message: `Fields on existing CertificateRequest resource not up to date: [${requestViolations.join(' ')}]`,
      },
    };
  }
  if (now.getTime() > leaf.notAfter.getTime()) {
    return { view, verdict: { reason: 'Expired', message: `Certificate expired on ${leaf.notAfter.toUTCString()}` } };
  }
  return { view };
}

/** The trigger-only policy: renewal time reached. Ready stays True meanwhile. */
export function checkRenewal(cert: Certificate, leaf: ParsedCertificate, now: Date): Verdict | undefined {
  const at = renewalTime(leaf.notBefore, leaf.notAfter, cert.spec);
  if (now.getTime() < at.getTime()) return undefined;
  return { reason: 'Renewing', message: `Renewing certificate as renewal was scheduled at ${at.toISOString().replace('.000Z', 'Z')}` };
}

function sameSet(a: string[] | undefined, b: string[] | undefined, norm: (s: string) => string = (s) => s): boolean {
  const x = [...new Set((a ?? []).map(norm))].sort();
  const y = [...new Set((b ?? []).map(norm))].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function normIp(ip: string): string {
  // Node renders IPv6 in the certificate expanded; compare on a canonical form.
  if (!isIPv6(ip)) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname;
  } catch {
    return ip.toLowerCase();
  }
}

export function specMismatches(spec: CertificateSpec, leaf: ParsedCertificate): string[] {
  const v: string[] = [];
  const name = nameFromDer(leaf.subjectDer);
  const cn = nameValues(name, OID.commonName)[0];
  if ((spec.commonName ?? '') !== (cn ?? '')) v.push('spec.commonName');
  const san = leaf.ext.san;
  if (!sameSet(spec.dnsNames, san?.dnsNames)) v.push('spec.dnsNames');
  if (!sameSet(spec.uris, san?.uris)) v.push('spec.uris');
  if (!sameSet(spec.ipAddresses, san?.ipAddresses, normIp)) v.push('spec.ipAddresses');
  if (!sameSet(spec.emailAddresses, san?.emailAddresses)) v.push('spec.emailAddresses');
  if (!sameSet(spec.subject?.organizations, nameValues(name, OID.organization))) v.push('spec.subject.organizations');
  if ((spec.isCA ?? false) !== leaf.isCA) v.push('spec.isCA');
  return v;
}

export function keyMismatches(spec: CertificateSpec, key: KeyObject): string[] {
  const want = desiredKey(spec);
  const v: string[] = [];
  const type = key.asymmetricKeyType;
  if (want.family !== type) {
    v.push('spec.privateKey.algorithm');
    return v;
  }
  // describeKey reads the size from the key's SPKI; asymmetricKeyDetails can deadlock Node 20 (see pki/keys).
  if (describeKey(key).bits !== want.bits) v.push('spec.privateKey.size');
  return v;
}

export function requestMismatches(spec: CertificateSpec, cr: CertificateRequest): string[] {
  const v: string[] = [];
  const crDuration = cr.spec.duration !== undefined ? parseGoDuration(cr.spec.duration) : undefined;
  if (crDuration !== undefined && crDuration !== certificateDurationMs(spec)) v.push('spec.duration');
  if ((cr.spec.isCA ?? false) !== (spec.isCA ?? false)) v.push('spec.isCA');
  const a = normalizeIssuerRef(cr.spec.issuerRef);
  const b = normalizeIssuerRef(spec.issuerRef);
  if (a.name !== b.name || a.kind !== b.kind || a.group !== b.group) v.push('spec.issuerRef');
  return v;
}
