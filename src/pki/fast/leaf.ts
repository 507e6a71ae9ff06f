import { randomFillSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import type { ParsedCertificate } from '../certificate.js';
import { invalid } from '../errors.js';
import { decodeOid, keyIdentifier, signatureAlgorithmFor, type SignatureAlgorithm } from '../keys.js';
import { OID } from '../oids.js';
import { DEFAULT_BACKDATE_SECONDS, assertCanIssue, randomSerial, type LeafResult } from '../profiles.js';
import { TAG, encodeOid, encodeTlv, readTlv, tlvSize, writeHeader } from './der.js';
import { encodeUriGeneralNames } from './names.js';
import { HASH_ID, native } from './native.js';

/**
 * Everything about a workload leaf that depends only on the signing CA, encoded once. The
 * extensions mirror the library profile (profiles.ts createLeafCertificate) in its order:
 * basicConstraints, keyUsage, extKeyUsage, subjectAltName (per request), authorityKeyIdentifier.
 */
export interface LeafSigner {
  cert: ParsedCertificate;
  key: KeyObject;
  sigAlgDer: Buffer;
  issuerDer: Buffer;
  extsBeforeSan: Buffer;
  extsAfterSan: Buffer;
  /** Signs a TBSCertificate with the CA key (the native signer when available, else node:crypto). */
  signTbs: (tbs: Buffer) => Buffer;
}

/**
 * An EC CA key held by the native module (one key import for the signer's life), or undefined.
 * The curve comes from the signature algorithm already chosen for the key (P-384 signs with
 * SHA-384, P-256 with SHA-256) and must match the curve named in the key's SEC1 encoding. The
 * scalar is read from that DER export, not from a JWK or `asymmetricKeyDetails`: Node 20 holds the
 * key's mutex while building those, which can deadlock against the garbage collector (see pki/keys).
 */
function nativeEcSign(key: KeyObject, alg: SignatureAlgorithm): ((tbs: Buffer) => Buffer) | undefined {
  const n = native;
  if (!n || alg.nullParams) return undefined;
  const curve = alg.hash === 'sha384' ? 1 : 0;
  const size = curve === 1 ? 48 : 32;
  const sec1 = key.export({ format: 'der', type: 'sec1' });
  try {
    const scalar = sec1Scalar(sec1, curve === 1 ? OID.secp384r1 : OID.prime256v1, size);
    if (!scalar) return undefined; // another curve: node:crypto signs
    const handle = n.ecSignerNew(curve, scalar);
    scalar.fill(0);
    const h = HASH_ID[alg.hash];
    return (tbs) => n.ecSign(handle, h, tbs);
  } finally {
    sec1.fill(0);
  }
}

/** The private scalar of an ECPrivateKey (RFC 5915) on the named curve, left-padded to `size`; undefined otherwise. */
export function sec1Scalar(der: Buffer, curveOid: string, size: number): Buffer | undefined {
  const top = readTlv(der, 0, der.length);
  const version = readTlv(der, top.body, top.end);
  const priv = readTlv(der, version.end, top.end);
  if (priv.tag !== TAG.OCTET_STRING || priv.end - priv.body > size) return undefined;
  let named = '';
  for (let pos = priv.end; pos < top.end;) {
    const t = readTlv(der, pos, top.end);
    if (t.tag === 0xa0) named = decodeOid(der.subarray(t.body, t.end));
    pos = t.end;
  }
  if (named !== curveOid) return undefined;
  const scalar = Buffer.alloc(size);
  der.copy(scalar, size - (priv.end - priv.body), priv.body, priv.end);
  return scalar;
}

const VERSION_V3 = Buffer.from([0xa0, 0x03, TAG.INTEGER, 0x01, 0x02]);
const EMPTY_NAME = Buffer.from([TAG.SEQUENCE, 0x00]);
const TRUE = Buffer.from([TAG.BOOLEAN, 0x01, 0xff]);
const SAN_OID = encodeOid(OID.subjectAltName);

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  // DER omits critical when it is FALSE, its default.
  const parts = critical ? [encodeOid(oid), TRUE] : [encodeOid(oid)];
  return encodeTlv(TAG.SEQUENCE, ...parts, encodeTlv(TAG.OCTET_STRING, value));
}

export function buildLeafSigner(cert: ParsedCertificate, key: KeyObject): LeafSigner {
  const alg = signatureAlgorithmFor(key);
  const algParts = alg.nullParams ? [encodeOid(alg.oid), Buffer.from([TAG.NULL, 0])] : [encodeOid(alg.oid)];
  const issuerKeyId = cert.ext.subjectKeyId ? Buffer.from(cert.ext.subjectKeyId, 'hex') : keyIdentifier(cert.publicKey);
  const basicConstraints = extension(OID.basicConstraints, true, encodeTlv(TAG.SEQUENCE)); // CA:FALSE is the empty SEQUENCE
  // keyUsage digitalSignature (bit 0) + keyEncipherment (bit 2): 0b101xxxxx, five unused bits.
  const keyUsage = extension(OID.keyUsage, true, encodeTlv(TAG.BIT_STRING, Buffer.from([0x05, 0xa0])));
  const extKeyUsage = extension(OID.extKeyUsage, false, encodeTlv(TAG.SEQUENCE, encodeOid(OID.serverAuth), encodeOid(OID.clientAuth)));
  const aki = extension(OID.authorityKeyIdentifier, false, encodeTlv(TAG.SEQUENCE, encodeTlv(0x80, issuerKeyId)));
  return {
    cert,
    key,
    signTbs: nativeEcSign(key, alg) ?? ((tbs) => cryptoSign(alg.hash, tbs, key)),
    sigAlgDer: encodeTlv(TAG.SEQUENCE, ...algParts),
    issuerDer: Buffer.from(cert.subjectDer),
    extsBeforeSan: Buffer.concat([basicConstraints, keyUsage, extKeyUsage]),
    extsAfterSan: aki,
  };
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, Zulu. */
function writeTime(out: Buffer, pos: number, d: Date): number {
  const y = d.getUTCFullYear();
  const rest = `${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}${pad2(d.getUTCHours())}${pad2(d.getUTCMinutes())}${pad2(d.getUTCSeconds())}Z`;
  const text = y > 2049 ? `${String(y).padStart(4, '0')}${rest}` : `${pad2(y % 100)}${rest}`;
  pos = writeHeader(out, pos, y > 2049 ? TAG.GENERALIZED_TIME : TAG.UTC_TIME, text.length);
  return pos + out.write(text, pos, 'latin1');
}

function timeSize(d: Date): number {
  return d.getUTCFullYear() > 2049 ? 17 : 15;
}

export interface LeafFields {
  serial: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo DER, copied verbatim. */
  spki: Uint8Array;
  uris: string[];
}

/** The TBSCertificate: constant parts from the signer, the rest written once into an exact-size buffer. */
export function encodeLeafTbs(s: LeafSigner, f: LeafFields): Buffer {
  if (f.uris.length === 0) throw invalid('no_sans', 'subject alternative name extension would be empty');
  const names = encodeUriGeneralNames(f.uris);
  // The SAN is critical because the subject is empty (RFC 5280 4.2.1.6).
  const sanLen = SAN_OID.length + TRUE.length + tlvSize(names.length);
  const extsLen = s.extsBeforeSan.length + tlvSize(sanLen) + s.extsAfterSan.length;
  const validityLen = timeSize(f.notBefore) + timeSize(f.notAfter);
  const tbsLen =
    VERSION_V3.length +
    tlvSize(f.serial.length) +
    s.sigAlgDer.length +
    s.issuerDer.length +
    tlvSize(validityLen) +
    EMPTY_NAME.length +
    f.spki.length +
    tlvSize(tlvSize(extsLen));
  const out = Buffer.allocUnsafe(tlvSize(tbsLen));
  let p = writeHeader(out, 0, TAG.SEQUENCE, tbsLen);
  p += VERSION_V3.copy(out, p);
  p = writeHeader(out, p, TAG.INTEGER, f.serial.length);
  out.set(f.serial, p);
  p += f.serial.length;
  p += s.sigAlgDer.copy(out, p);
  p += s.issuerDer.copy(out, p);
  p = writeHeader(out, p, TAG.SEQUENCE, validityLen);
  p = writeTime(out, p, f.notBefore);
  p = writeTime(out, p, f.notAfter);
  p += EMPTY_NAME.copy(out, p);
  out.set(f.spki, p);
  p += f.spki.length;
  p = writeHeader(out, p, 0xa3, tlvSize(extsLen));
  p = writeHeader(out, p, TAG.SEQUENCE, extsLen);
  p += s.extsBeforeSan.copy(out, p);
  p = writeHeader(out, p, TAG.SEQUENCE, sanLen);
  p += SAN_OID.copy(out, p);
  p += TRUE.copy(out, p);
  p = writeHeader(out, p, TAG.OCTET_STRING, names.length);
  p += names.copy(out, p);
  p += s.extsAfterSan.copy(out, p);
  if (p !== out.length) throw new Error(`leaf encoder wrote ${p} of ${out.length} octets`);
  return out;
}

/** Signs the TBS and wraps it: Certificate ::= SEQUENCE { tbs, signatureAlgorithm, BIT STRING }. */
export function signLeafTbs(s: LeafSigner, tbs: Buffer): Buffer {
  const sig = s.signTbs(tbs);
  const bodyLen = tbs.length + s.sigAlgDer.length + tlvSize(sig.length + 1);
  const out = Buffer.allocUnsafe(tlvSize(bodyLen));
  let p = writeHeader(out, 0, TAG.SEQUENCE, bodyLen);
  p += tbs.copy(out, p);
  p += s.sigAlgDer.copy(out, p);
  p = writeHeader(out, p, TAG.BIT_STRING, sig.length + 1);
  out[p++] = 0; // no unused bits
  sig.copy(out, p);
  return out;
}

export interface FastLeafOptions {
  spki: Uint8Array;
  uris: string[];
  ttlSeconds: number;
  now: Date;
  backdateSeconds?: number;
  serial?: Buffer;
}

/**
 * Serial randomness from a pooled CSPRNG buffer: one RAND_bytes call per 256 serials instead of
 * one per certificate (a per-call cost that showed up in profiles). Each byte is handed out once.
 */
const randomPool = Buffer.allocUnsafeSlow(4096);
let randomAt = randomPool.length;

function pooledRandom(n: number): Buffer {
  if (randomAt + n > randomPool.length) {
    randomFillSync(randomPool);
    randomAt = 0;
  }
  const out = Buffer.from(randomPool.subarray(randomAt, randomAt + n));
  randomPool.fill(0, randomAt, randomAt + n);
  randomAt += n;
  return out;
}

/** createLeafCertificate's checks and dates, then the lean encoder. */
export function createLeafFast(s: LeafSigner, o: FastLeafOptions): LeafResult {
  assertCanIssue(s.cert, o.now, false);
  if (!(o.ttlSeconds > 0)) throw invalid('bad_ttl', `certificate TTL must be positive, got ${o.ttlSeconds}s`);
  const serial = o.serial ?? randomSerial(pooledRandom);
  const now = o.now.getTime();
  const notBefore = new Date(Math.max(now - (o.backdateSeconds ?? DEFAULT_BACKDATE_SECONDS) * 1000, s.cert.notBefore.getTime()));
  const notAfter = new Date(Math.min(now + o.ttlSeconds * 1000, s.cert.notAfter.getTime()));
  const tbs = encodeLeafTbs(s, { serial, notBefore, notAfter, spki: o.spki, uris: o.uris });
  return { der: signLeafTbs(s, tbs), serial, notBefore, notAfter };
}
