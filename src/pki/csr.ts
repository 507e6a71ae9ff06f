import { createPublicKey, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Attribute, AlgorithmIdentifier, Extension, Extensions, KeyUsage, Name, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { invalid } from './errors.js';
import { basicConstraintsExt, emptySans, parseExtensions, sanExt, type SubjectAltNames } from './extensions.js';
import {
  checkKeyPolicy,
  describeKey,
  publicKeyFromSpki,
  signData,
  signatureAlgorithmFor,
  spkiDer,
  verifyData,
  type KeyInfo,
} from './keys.js';
import { buildName, isEmptyName, nameToDer, renderName, type SubjectSpec } from './name.js';
import { OID } from './oids.js';
import { encodePem, toDer } from './pem.js';

export interface CsrOptions {
  /** The requester's private key; the CSR is signed with it. */
  key: KeyObject;
  subject?: SubjectSpec;
  sans?: Partial<SubjectAltNames>;
  /** Request the CA extension (an intermediate CSR). */
  isCA?: boolean;
}

export interface CreatedCsr {
  der: Buffer;
  pem: string;
}

export function sigAlgId(alg: { oid: string; nullParams: boolean }): AlgorithmIdentifier {
  return new AlgorithmIdentifier({ algorithm: alg.oid, parameters: alg.nullParams ? null : undefined });
}

export function createCsr(opts: CsrOptions): CreatedCsr {
  const publicKey = createPublicKey(opts.key);
  checkKeyPolicy(describeKey(publicKey), 'CSR key');
  const exts: Extension[] = [];
  const subject = buildName(opts.subject ?? {});
  const sans = opts.sans ?? {};
  const hasSans = ['uris', 'dnsNames', 'ipAddresses', 'emailAddresses'].some((k) => (sans[k as keyof SubjectAltNames] ?? []).length > 0);
  if (hasSans) exts.push(sanExt(sans, isEmptyName(subject)));
  if (opts.isCA) exts.push(basicConstraintsExt(true));
  const attributes = new Attributes();
  if (exts.length > 0) {
    attributes.push(new Attribute({ type: OID.extensionRequest, values: [AsnConvert.serialize(new Extensions(exts))] }));
  }
  const info = new CertificationRequestInfo({
    version: 0,
    subject,
    subjectPKInfo: AsnConvert.parse(spkiDer(publicKey), SubjectPublicKeyInfo),
    attributes,
  });
  const infoDer = Buffer.from(AsnConvert.serialize(info));
  const alg = signatureAlgorithmFor(opts.key);
  const signature = signData(alg, opts.key, infoDer);
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: sigAlgId(alg),
    signature: new Uint8Array(signature).buffer,
  });
  const der = Buffer.from(AsnConvert.serialize(csr));
  return { der, pem: encodePem('CERTIFICATE REQUEST', der) };
}

export interface ParsedCsr {
  der: Buffer;
  subject: string;
  subjectDer: Buffer;
  subjectEmpty: boolean;
  publicKey: KeyObject;
  spkiDer: Buffer;
  keyInfo: KeyInfo;
  signatureAlgorithmOid: string;
  sans: SubjectAltNames;
  /** Whether the request asks for CA powers: basicConstraints CA:TRUE, or keyUsage keyCertSign or cRLSign. */
  requestsCA: boolean;
  requestedExtensions: string[];
}

/**
 * Parses a PKCS#10 request and verifies it: the self-signature, the key policy
 * (RSA >= 2048, P-256/P-384 only) and the requested extensions' encoding. Every
 * rejection names its cause.
 */
export function parseCsr(input: string | Uint8Array, what = 'CSR'): ParsedCsr {
  const der = toDer(input, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST'], what);
  let req: CertificationRequest;
  try {
    req = AsnConvert.parse(der, CertificationRequest);
  } catch (e) {
    throw invalid('malformed_csr', `${what}: not a valid PKCS#10 certificate request (DER does not parse)`, e);
  }
  const info = req.certificationRequestInfo;
  if (info.version !== 0) throw invalid('malformed_csr', `${what}: version ${info.version} is not 0 (v1)`);
  const spki = Buffer.from(AsnConvert.serialize(info.subjectPKInfo));
  const publicKey = publicKeyFromSpki(spki, what);
  const keyInfo = describeKey(publicKey);
  checkKeyPolicy(keyInfo, what);
  const sigOid = req.signatureAlgorithm.algorithm;
  const signature = Buffer.from(req.signature);
  if (signature.length === 0) throw invalid('unsigned_csr', `${what}: the request carries no signature`);
  const infoRaw = req.certificationRequestInfoRaw ? Buffer.from(req.certificationRequestInfoRaw) : Buffer.from(AsnConvert.serialize(info));
  let ok: boolean;
  try {
    ok = verifyData(sigOid, publicKey, infoRaw, signature);
  } catch (e) {
    throw invalid('bad_csr_signature', `${what}: signature algorithm ${sigOid} is not supported`, e);
  }
  if (!ok) {
    throw invalid('bad_csr_signature', `${what}: signature does not verify with the request's own public key`);
  }
  let sans = emptySans();
  let requestsCA = false;
  const requestedExtensions: string[] = [];
  for (const attr of info.attributes) {
    if (attr.type !== OID.extensionRequest) continue;
    for (const v of attr.values) {
      let exts: Extensions;
      try {
        exts = AsnConvert.parse(v, Extensions);
      } catch (e) {
        throw invalid('malformed_csr', `${what}: extensionRequest attribute is not valid DER`, e);
      }
      const parsed = parseExtensions([...exts], what);
      for (const e of exts) requestedExtensions.push(e.extnID);
      if (parsed.san) sans = parsed.san;
      if (parsed.basicConstraints?.ca) requestsCA = true;
      if (parsed.keyUsage && keyUsageAsksForCa(exts)) requestsCA = true;
    }
  }
  const subjectDer = nameToDer(info.subject);
  return {
    der,
    subject: renderName(info.subject),
    subjectDer,
    subjectEmpty: (info.subject as Name).length === 0,
    publicKey,
    spkiDer: spki,
    keyInfo,
    signatureAlgorithmOid: sigOid,
    sans,
    requestsCA,
    requestedExtensions,
  };
}

/**
 * keyCertSign (bit 5) or cRLSign (bit 6) set in the first octet of the keyUsage bits. Read from the
 * bytes rather than KeyUsage.toNumber, which drops unused bits and loses precision on long strings,
 * so that the lean parser (fast/extensions.ts) reads the same bits.
 */
function keyUsageAsksForCa(exts: Extensions): boolean {
  const ku = exts.find((e) => e.extnID === OID.keyUsage);
  if (!ku) return false;
  const bits = new Uint8Array(AsnConvert.parse(ku.extnValue.buffer, KeyUsage).value);
  return bits.length > 0 && (bits[0] & (0x04 | 0x02)) !== 0;
}

export function csrToPem(der: Uint8Array): string {
  return encodePem('CERTIFICATE REQUEST', der);
}
