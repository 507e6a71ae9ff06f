import type { KeyObject } from 'node:crypto';
import { invalid, MeshcaError } from '../errors.js';
import { emptySans, type SubjectAltNames } from '../extensions.js';
import { decodeOid, signatureAlgorithmByOid, type KeyInfo, type SignatureAlgorithm } from '../keys.js';
import { OID } from '../oids.js';
import { DerError, TAG, bytesEqual, checkAny, checkOidBody, encodeOid, expectTlv, readSmallInt, readTlv, type Tlv } from './der.js';
import { parseRequestedExtensions } from './extensions.js';
import { checkName } from './names.js';
import { csrDer } from './pem.js';
import { loadSpki, type LoadedKey } from './spki.js';

/** What the lean parser returns: raw byte views of the request plus the verified key. */
export interface FastCsr {
  der: Buffer;
  /** CertificationRequestInfo exactly as signed. */
  infoDer: Buffer;
  /** The subject as the request encodes it (parseCsr returns its re-encoding, which differs only for odd strings). */
  subjectDer: Buffer;
  subjectEmpty: boolean;
  spkiDer: Buffer;
  /** spkiDer equals Node's export of publicKey, so a certificate may carry it unchanged. */
  spkiCanonical: boolean;
  publicKey: KeyObject;
  keyInfo: KeyInfo;
  signatureAlgorithmOid: string;
  signature: Buffer;
  sans: SubjectAltNames;
  requestsCA: boolean;
  requestedExtensions: string[];
}

/**
 * The parsed request: a class, not an object literal, because of `publicKey`. A getter written
 * in a literal is a fresh closure per request, so V8 cannot share one hidden class between those
 * objects; in a loop of parseCsrFast that left about 800 bytes per request in the old generation
 * (`--trace-gc-nvp`: 940 promoted bytes per call with the literal, 137 with this class), garbage
 * that only a mark-compact frees. The getter on the prototype costs nothing per request.
 */
class LeanCsr implements FastCsr {
  readonly der: Buffer;
  readonly infoDer: Buffer;
  readonly subjectDer: Buffer;
  readonly subjectEmpty: boolean;
  readonly spkiDer: Buffer;
  readonly spkiCanonical: boolean;
  readonly keyInfo: KeyInfo;
  readonly signatureAlgorithmOid: string;
  readonly signature: Buffer;
  readonly sans: SubjectAltNames;
  readonly requestsCA: boolean;
  readonly requestedExtensions: string[];

  constructor(
    f: Omit<FastCsr, 'publicKey' | 'spkiCanonical' | 'keyInfo'>,
    private readonly key: LoadedKey,
  ) {
    this.der = f.der;
    this.infoDer = f.infoDer;
    this.subjectDer = f.subjectDer;
    this.subjectEmpty = f.subjectEmpty;
    this.spkiDer = f.spkiDer;
    this.spkiCanonical = key.canonical;
    this.keyInfo = key.keyInfo;
    this.signatureAlgorithmOid = f.signatureAlgorithmOid;
    this.signature = f.signature;
    this.sans = f.sans;
    this.requestsCA = f.requestsCA;
    this.requestedExtensions = f.requestedExtensions;
  }

  /** With the native checks the KeyObject is made only if something asks for it. */
  get publicKey(): KeyObject {
    return this.key.publicKey;
  }
}

const EXTENSION_REQUEST = encodeOid(OID.extensionRequest);

/** Supported signature algorithms keyed by their OID TLV bytes, to avoid decoding OIDs per request. */
const SIG_BY_DER = new Map<string, SignatureAlgorithm>();
for (const oid of [
  OID.ecdsaWithSHA256,
  OID.ecdsaWithSHA384,
  OID.ecdsaWithSHA512,
  OID.sha256WithRSA,
  OID.sha384WithRSA,
  OID.sha512WithRSA,
]) {
  const alg = signatureAlgorithmByOid(oid);
  if (alg) SIG_BY_DER.set(encodeOid(oid).toString('latin1'), alg);
}

interface Layout {
  info: Tlv;
  version: Tlv;
  subject: Tlv;
  spki: Tlv;
  sigOid: Tlv;
  sigValue: Tlv;
  /** Values of every extensionRequest attribute, in order. */
  extRequests: Tlv[];
}

/** The attributes [0] IMPLICIT SET OF Attribute { type OID, values SET OF ANY }; returns extensionRequest values. */
function walkAttributes(der: Buffer, attrs: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = attrs.body; p < attrs.end;) {
    const attr = expectTlv(der, p, attrs.end, TAG.SEQUENCE, 'Attribute');
    const type = expectTlv(der, attr.body, attr.end, TAG.OID, 'attribute type');
    checkOidBody(der, type);
    const values = expectTlv(der, type.end, attr.end, TAG.SET, 'attribute values');
    if (values.end !== attr.end) throw new DerError('Attribute: trailing data');
    const isExtReq = bytesEqual(der, type.start, type.end, EXTENSION_REQUEST);
    for (let q = values.body; q < values.end;) {
      const v = readTlv(der, q, values.end);
      checkAny(der, v);
      if (isExtReq) out.push(v);
      q = v.end;
    }
    p = attr.end;
  }
  return out;
}

/** Walks the whole CertificationRequest; any shape other than PKCS#10's is a DerError. */
function walk(der: Buffer): Layout {
  const outer = expectTlv(der, 0, der.length, TAG.SEQUENCE, 'CertificationRequest');
  if (outer.end !== der.length) throw new DerError('trailing data after the request');
  const info = expectTlv(der, outer.body, outer.end, TAG.SEQUENCE, 'CertificationRequestInfo');
  const sigAlg = expectTlv(der, info.end, outer.end, TAG.SEQUENCE, 'signatureAlgorithm');
  const sigValue = expectTlv(der, sigAlg.end, outer.end, TAG.BIT_STRING, 'signature');
  if (sigValue.end !== outer.end) throw new DerError('trailing data in CertificationRequest');
  // Signatures are whole octets: the unused-bits octet must be present and zero.
  if (sigValue.body === sigValue.end || der[sigValue.body] !== 0) throw new DerError('signature: bad BIT STRING');
  const sigOid = expectTlv(der, sigAlg.body, sigAlg.end, TAG.OID, 'signature algorithm');
  checkOidBody(der, sigOid);
  if (sigOid.end < sigAlg.end) {
    const params = readTlv(der, sigOid.end, sigAlg.end);
    if (params.end !== sigAlg.end) throw new DerError('signatureAlgorithm: trailing data');
    checkAny(der, params);
  }

  const version = expectTlv(der, info.body, info.end, TAG.INTEGER, 'version');
  const subject = expectTlv(der, version.end, info.end, TAG.SEQUENCE, 'subject');
  checkName(der, subject);
  const spki = expectTlv(der, subject.end, info.end, TAG.SEQUENCE, 'subjectPKInfo');
  checkAny(der, spki); // shape only; loadSpki reads it in detail after the version check, as the library does
  let extRequests: Tlv[] = [];
  if (spki.end < info.end) {
    const attrs = expectTlv(der, spki.end, info.end, 0xa0, 'attributes');
    if (attrs.end !== info.end) throw new DerError('trailing data in CertificationRequestInfo');
    extRequests = walkAttributes(der, attrs);
  }
  return { info, version, subject, spki, sigOid, sigValue, extRequests };
}

function malformed(what: string, e: unknown): never {
  if (e instanceof DerError) {
    throw invalid('malformed_csr', `${what}: not a valid PKCS#10 certificate request (DER does not parse)`, e);
  }
  throw e;
}

/**
 * Lean PKCS#10 parser and verifier: the checks of parseCsr (csr.ts), in the same order and with
 * the same reasons and messages, without building an object tree. It is stricter than the
 * library's BER parser: input must be DER, open (ANY) values must be of common types, and rare
 * SAN kinds are refused. Those refusals carry the reasons in LIBRARY_DECIDES (index.ts), so
 * that issuance can hand such requests to the library and keep its exact behaviour.
 */
export function parseCsrFast(input: string | Uint8Array, what = 'CSR'): FastCsr {
  const der = csrDer(input, what);
  let l: Layout;
  try {
    l = walk(der);
  } catch (e) {
    malformed(what, e);
  }
  let version: number;
  try {
    version = readSmallInt(der, l.version);
  } catch (e) {
    malformed(what, e);
  }
  if (version !== 0) throw invalid('malformed_csr', `${what}: version ${version} is not 0 (v1)`);
  let key: LoadedKey;
  try {
    key = loadSpki(der, l.spki, what);
  } catch (e) {
    malformed(what, e);
  }
  const signature = der.subarray(l.sigValue.body + 1, l.sigValue.end);
  if (signature.length === 0) throw invalid('unsigned_csr', `${what}: the request carries no signature`);
  const alg = SIG_BY_DER.get(der.toString('latin1', l.sigOid.start, l.sigOid.end));
  const sigOid = alg ? alg.oid : decodeOid(der.subarray(l.sigOid.start, l.sigOid.end));
  if (!alg) {
    const cause = new MeshcaError('invalid_argument', 'unsupported_signature', `signature algorithm ${sigOid} is not supported`);
    throw invalid('bad_csr_signature', `${what}: signature algorithm ${sigOid} is not supported`, cause);
  }
  const infoDer = der.subarray(l.info.start, l.info.end);
  if (!key.verify(alg, infoDer, signature)) {
    throw invalid('bad_csr_signature', `${what}: signature does not verify with the request's own public key`);
  }
  let sans = emptySans();
  let requestsCA = false;
  const requestedExtensions: string[] = [];
  for (const v of l.extRequests) {
    const parsed = parseRequestedExtensions(der, v, what);
    requestedExtensions.push(...parsed.oids);
    if (parsed.san) sans = parsed.san;
    if (parsed.ca) requestsCA = true;
  }
  return new LeanCsr(
    {
      der,
      infoDer,
      subjectDer: der.subarray(l.subject.start, l.subject.end),
      subjectEmpty: l.subject.body === l.subject.end,
      spkiDer: der.subarray(l.spki.start, l.spki.end),
      signatureAlgorithmOid: sigOid,
      signature,
      sans,
      requestsCA,
      requestedExtensions,
    },
    key,
  );
}
