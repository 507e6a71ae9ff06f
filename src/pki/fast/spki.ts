import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { invalid } from '../errors.js';
import { checkKeyPolicy, decodeOid, describeKey, type KeyInfo } from '../keys.js';
import { OID } from '../oids.js';
import { DerError, TAG, bytesEqual, checkAny, checkOidBody, encodeOid, encodeTlv, expectTlv, readTlv, type Tlv } from './der.js';

const EC_PUBLIC_KEY = encodeOid(OID.ecPublicKey);
const RSA_ENCRYPTION = encodeOid(OID.rsaEncryption);

/**
 * The exact SPKI prefix Node (OpenSSL) writes for a named-curve key with an uncompressed point,
 * up to and including the point's 0x04 octet. A request whose SPKI is this prefix plus the
 * coordinates is byte-identical to Node's own export, so a certificate may copy it as is.
 */
function ecPrefix(curveOid: string, coordLen: number): Buffer {
  const alg = encodeTlv(TAG.SEQUENCE, EC_PUBLIC_KEY, encodeOid(curveOid));
  const bitLen = 2 + 2 * coordLen; // unused-bits octet, 0x04, X, Y
  const point = Buffer.alloc(bitLen);
  point[1] = 0x04; // uncompressed
  const whole = encodeTlv(TAG.SEQUENCE, alg, encodeTlv(TAG.BIT_STRING, point));
  return whole.subarray(0, whole.length - (bitLen - 2));
}

interface Curve {
  oid: Buffer;
  prefix: Buffer;
  coordLen: number;
  crv: 'P-256' | 'P-384';
}

const CURVES: Curve[] = [
  { oid: encodeOid(OID.prime256v1), prefix: ecPrefix(OID.prime256v1, 32), coordLen: 32, crv: 'P-256' },
  { oid: encodeOid(OID.secp384r1), prefix: ecPrefix(OID.secp384r1, 48), coordLen: 48, crv: 'P-384' },
];

const RSA_ALG_ID = encodeTlv(TAG.SEQUENCE, RSA_ENCRYPTION, Buffer.from([TAG.NULL, 0]));

export interface LoadedKey {
  publicKey: KeyObject;
  keyInfo: KeyInfo;
  /** The SPKI bytes are exactly what Node exports for this key, so a certificate can copy them. */
  canonical: boolean;
}

function b64u(buf: Uint8Array, start: number, end: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('base64url');
}

/** A positive, minimally encoded INTEGER's magnitude as [start, end), or undefined when it is not one. */
function positiveMagnitude(buf: Uint8Array, t: Tlv): [number, number] | undefined {
  const n = t.end - t.body;
  if (n < 1 || buf[t.body] & 0x80) return undefined;
  if (buf[t.body] === 0) {
    if (n < 2 || buf[t.body + 1] < 0x80) return undefined; // zero, or a superfluous leading zero
    return [t.body + 1, t.end];
  }
  return [t.body, t.end];
}

/**
 * The RSA modulus and exponent as JWK members when the SPKI is in Node's canonical form:
 * NULL parameters and SEQUENCE { n, e } with positive minimal integers.
 */
function rsaJwk(buf: Uint8Array, alg: Tlv, bits: Tlv): JsonWebKey | undefined {
  if (!bytesEqual(buf, alg.start, alg.end, RSA_ALG_ID)) return undefined;
  try {
    const seq = expectTlv(buf, bits.body + 1, bits.end, TAG.SEQUENCE, 'RSAPublicKey');
    if (seq.end !== bits.end) return undefined;
    const n = expectTlv(buf, seq.body, seq.end, TAG.INTEGER, 'modulus');
    const e = expectTlv(buf, n.end, seq.end, TAG.INTEGER, 'exponent');
    if (e.end !== seq.end) return undefined;
    const nm = positiveMagnitude(buf, n);
    const em = positiveMagnitude(buf, e);
    if (!nm || !em) return undefined;
    return { kty: 'RSA', n: b64u(buf, nm[0], nm[1]), e: b64u(buf, em[0], em[1]) };
  } catch (err) {
    if (err instanceof DerError) return undefined;
    throw err;
  }
}

function loadKey(what: string, key: Parameters<typeof createPublicKey>[0]): KeyObject {
  try {
    return createPublicKey(key);
  } catch (e) {
    throw invalid('bad_public_key', `${what}: public key cannot be loaded`, e);
  }
}

/**
 * Reads SubjectPublicKeyInfo at `spki` and loads the key, with the library's checks, reasons
 * and messages in the library's order: algorithm, curve, loading, then the size policy.
 *
 * Loading goes through JWK for the canonical forms because OpenSSL 3's DER decoder costs
 * about 130 µs per key in Node 20, more than the signature checks themselves; JWK import
 * builds the same key (with a full point validation for EC) in a fraction of that. Any other
 * encoding is handed to the DER decoder, exactly as the library does.
 */
export function loadSpki(buf: Buffer, spki: Tlv, what: string): LoadedKey {
  // Structure: SEQUENCE { SEQUENCE { OID, params ANY OPTIONAL }, BIT STRING }
  const alg = expectTlv(buf, spki.body, spki.end, TAG.SEQUENCE, 'AlgorithmIdentifier');
  const bits = expectTlv(buf, alg.end, spki.end, TAG.BIT_STRING, 'subjectPublicKey');
  if (bits.end !== spki.end) throw new DerError('SubjectPublicKeyInfo: trailing data');
  // Keys are whole octets; a non-zero unused-bits count is refused rather than reinterpreted.
  if (bits.end === bits.body || buf[bits.body] !== 0) throw new DerError('subjectPublicKey: bad BIT STRING');
  const algOid = expectTlv(buf, alg.body, alg.end, TAG.OID, 'algorithm');
  checkOidBody(buf, algOid);
  let params: Tlv | undefined;
  if (algOid.end < alg.end) {
    params = readTlv(buf, algOid.end, alg.end);
    if (params.end !== alg.end) throw new DerError('AlgorithmIdentifier: trailing data');
    checkAny(buf, params);
  }

  let jwk: JsonWebKey | undefined;
  if (bytesEqual(buf, algOid.start, algOid.end, EC_PUBLIC_KEY)) {
    const p = params;
    const curve = p ? CURVES.find((c) => bytesEqual(buf, p.start, p.end, c.oid)) : undefined;
    if (!curve) {
      const oid = p ? decodeOid(buf.subarray(p.start, p.end)) : '';
      const known = oid === OID.secp521r1 ? 'P-521' : oid || 'none';
      throw invalid('bad_curve', `${what}: elliptic curve ${known} is not accepted; use P-256 or P-384`);
    }
    const x = spki.start + curve.prefix.length;
    const y = x + curve.coordLen;
    if (spki.end === y + curve.coordLen && bytesEqual(buf, spki.start, x, curve.prefix)) {
      jwk = { kty: 'EC', crv: curve.crv, x: b64u(buf, x, y), y: b64u(buf, y, spki.end) };
    }
  } else if (bytesEqual(buf, algOid.start, algOid.end, RSA_ENCRYPTION)) {
    jwk = rsaJwk(buf, alg, bits);
  } else {
    const oid = decodeOid(buf.subarray(algOid.start, algOid.end));
    throw invalid('unsupported_key', `${what}: public key algorithm ${oid} is not supported; use ECDSA or RSA`);
  }
  const der = buf.subarray(spki.start, spki.end);
  const publicKey = jwk
    ? loadKey(what, { key: jwk, format: 'jwk' })
    : loadKey(what, { key: der, format: 'der', type: 'spki' });
  const keyInfo = describeKey(publicKey);
  checkKeyPolicy(keyInfo, what);
  return { publicKey, keyInfo, canonical: jwk !== undefined };
}
