import { X509Certificate as NodeX509, createHash, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { invalid } from './errors.js';
import { parseExtensions, type ParsedExtensions } from './extensions.js';
import { describeKey, signatureAlgorithmByOid, type KeyInfo } from './keys.js';
import { nameToDer, renderName } from './name.js';
import { decodePemBlocks, encodePem, toDer } from './pem.js';

/** A parsed X.509 certificate: the fields meshca reasons about, plus the raw DER. */
export interface ParsedCertificate {
  der: Buffer;
  pem: string;
  subject: string;
  issuer: string;
  subjectDer: Buffer;
  issuerDer: Buffer;
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  keyInfo: KeyInfo;
  signatureAlgorithmOid: string;
  signatureAlgorithm: string;
  ext: ParsedExtensions;
  /** SHA-256 of the DER, colon-separated upper-case hex (as openssl -fingerprint prints it). */
  fingerprint256: string;
  /** Subject and issuer names are identical (self-issued). */
  selfIssued: boolean;
  isCA: boolean;
  node: NodeX509;
}

export function fingerprint256(der: Uint8Array): string {
  return createHash('sha256')
    .update(der)
    .digest('hex')
    .toUpperCase()
    .replace(/(..)(?!$)/g, '$1:');
}

export function parseCertificate(input: string | Uint8Array, what = 'certificate'): ParsedCertificate {
  const der = toDer(input, ['CERTIFICATE'], what);
  let cert: Certificate;
  let node: NodeX509;
  try {
    cert = AsnConvert.parse(der, Certificate);
    node = new NodeX509(der);
  } catch (e) {
    throw invalid('bad_certificate', `${what}: not a valid X.509 certificate`, e);
  }
  const tbs = cert.tbsCertificate;
  const subjectDer = nameToDer(tbs.subject);
  const issuerDer = nameToDer(tbs.issuer);
  const sigOid = cert.signatureAlgorithm.algorithm;
  const publicKey = node.publicKey;
  const ext = parseExtensions(tbs.extensions, what);
  return {
    der,
    pem: encodePem('CERTIFICATE', der),
    subject: renderName(tbs.subject),
    issuer: renderName(tbs.issuer),
    subjectDer,
    issuerDer,
    serialHex: Buffer.from(tbs.serialNumber)
      .toString('hex')
      .replace(/^(00)+(?=.)/, ''),
    notBefore: tbs.validity.notBefore.getTime(),
    notAfter: tbs.validity.notAfter.getTime(),
    publicKey,
    keyInfo: safeDescribe(publicKey),
    signatureAlgorithmOid: sigOid,
    signatureAlgorithm: signatureAlgorithmByOid(sigOid)?.name ?? sigOid,
    ext,
    fingerprint256: fingerprint256(der),
    selfIssued: subjectDer.equals(issuerDer),
    isCA: ext.basicConstraints?.ca === true,
    node,
  };
}

function safeDescribe(key: KeyObject): KeyInfo {
  try {
    return describeKey(key);
  } catch {
    const t = key.asymmetricKeyType ?? 'unknown';
    return { family: 'ec', bits: 0, label: t, curve: t };
  }
}

/** Every certificate in a PEM text, in order. Throws when there are none. */
export function parseCertificates(text: string, what = 'certificate file'): ParsedCertificate[] {
  const all = decodePemBlocks(text);
  const blocks = all.filter((b) => b.label === 'CERTIFICATE');
  if (blocks.length === 0) {
    // A CSR where a certificate belongs is a common copy mistake (`openssl req -new -out root-ca.crt`).
    const csr = all.some((b) => /^(NEW )?CERTIFICATE REQUEST$/.test(b.label));
    throw invalid(
      'bad_pem',
      `${what}: no PEM "CERTIFICATE" block found${csr ? ' (it holds a CERTIFICATE REQUEST, a CSR: put the signed certificate there)' : ''}`,
    );
  }
  return blocks.map((b, i) => parseCertificate(b.der, blocks.length > 1 ? `${what} #${i + 1}` : what));
}

/** Short label for messages: the CN or the whole subject, and the role. */
export function certLabel(c: ParsedCertificate): string {
  const cn = /CN = ([^,]+)/.exec(c.subject)?.[1];
  const name = cn ?? (c.subject || c.ext.san?.uris[0] || `serial ${c.serialHex}`);
  return `"${name}"`;
}

export function certsToPem(certs: { pem: string }[]): string {
  return certs.map((c) => c.pem).join('');
}
