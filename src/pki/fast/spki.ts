import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { invalid } from '../errors.js';
import { checkKeyPolicy, decodeOid, describeKey, verifyWith, type KeyInfo, type SignatureAlgorithm } from '../keys.js';
import { OID } from '../oids.js';
import { HASH_ID, native } from './native.js';
import { DerError, TAG, bitLength, bytesEqual, checkAny, checkOidBody, encodeOid, encodeTlv, expectTlv, readTlv, type Tlv } from './der.js';

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
  /** The curve's number in the native module. */
  id: number;
  info: KeyInfo;
}

const CURVES: Curve[] = [
  {
    oid: encodeOid(OID.prime256v1),
    prefix: ecPrefix(OID.prime256v1, 32),
    coordLen: 32,
    crv: 'P-256',
    id: 0,
    info: { family: 'ec', curve: 'P-256', bits: 256, label: 'EC P-256' },
  },
  {
    oid: encodeOid(OID.secp384r1),
    prefix: ecPrefix(OID.secp384r1, 48),
    coordLen: 48,
    crv: 'P-384',
    id: 1,
    info: { family: 'ec', curve: 'P-384', bits: 384, label: 'EC P-384' },
  },
];

const RSA_ALG_ID = encodeTlv(TAG.SEQUENCE, RSA_ENCRYPTION, Buffer.from([TAG.NULL, 0]));

export interface LoadedKey {
  /** The key as a KeyObject; made on first use when the native module checks the signature. */
  readonly publicKey: KeyObject;
  keyInfo: KeyInfo;
  /** The SPKI bytes are exactly what Node exports for this key, so a certificate can copy them. */
  canonical: boolean;
  /** Checks a signature made with this key; false when the algorithm family is not the key's. */
  verify(alg: SignatureAlgorithm, data: Buffer, signature: Buffer): boolean;
}

function nodeKey(publicKey: KeyObject, canonical: boolean, what: string): LoadedKey {
  const keyInfo = describeKey(publicKey);
  checkKeyPolicy(keyInfo, what);
  return { publicKey, keyInfo, canonical, verify: (alg, data, sig) => verifyWith(alg, publicKey, data, sig) };
}

/** A canonical key checked by the native module; the KeyObject is made only if someone asks for it. */
class NativeKey implements LoadedKey {
  private key?: KeyObject;
  readonly canonical = true;
  constructor(
    readonly keyInfo: KeyInfo,
    private readonly jwk: () => JsonWebKey,
    readonly verify: (alg: SignatureAlgorithm, data: Buffer, signature: Buffer) => boolean,
  ) {}

  get publicKey(): KeyObject {
    return (this.key ??= createPublicKey({ key: this.jwk(), format: 'jwk' }));
  }
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
 * The RSA modulus and exponent magnitudes when the SPKI is in Node's canonical form:
 * NULL parameters and SEQUENCE { n, e } with positive minimal integers.
 */
function rsaParts(buf: Uint8Array, alg: Tlv, bits: Tlv): { n: [number, number]; e: [number, number] } | undefined {
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
    return { n: nm, e: em };
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
 * Loading goes through JWK for the canonical forms because OpenSSL 3's DER decoder in Node 20
 * costs more per key than the signature checks themselves; JWK import builds the same key (with a
 * full point validation for EC) in a fraction of that. Any other
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
      const ecJwk = (): JsonWebKey => ({ kty: 'EC', crv: curve.crv, x: b64u(buf, x, y), y: b64u(buf, y, spki.end) });
      const n = native;
      if (n) {
        const point = buf.subarray(x - 1, spki.end); // from the 0x04 octet
        // The same verdict as the JWK import: the point must lie on the curve (cofactor 1, so that is full validation).
        if (!n.ecPointValid(curve.id, point))
          throw invalid('bad_public_key', `${what}: public key cannot be loaded`, new Error('the EC point is not on the curve'));
        const id = curve.id;
        return new NativeKey(
          { ...curve.info },
          ecJwk,
          (alg, data, sig) => !alg.nullParams && n.ecVerify(id, point, HASH_ID[alg.hash], data, sig) === 1,
        );
      }
      jwk = ecJwk();
    }
  } else if (bytesEqual(buf, algOid.start, algOid.end, RSA_ENCRYPTION)) {
    const r = rsaParts(buf, alg, bits);
    if (r) {
      const rsaJwk = (): JsonWebKey => ({ kty: 'RSA', n: b64u(buf, r.n[0], r.n[1]), e: b64u(buf, r.e[0], r.e[1]) });
      const nat = native;
      if (nat) {
        const info: KeyInfo = { family: 'rsa', bits: bitLength(buf, r.n[0], r.n[1]), label: '' };
        info.label = `RSA ${info.bits}`;
        checkKeyPolicy(info, what);
        const mod = buf.subarray(r.n[0], r.n[1]);
        const exp = buf.subarray(r.e[0], r.e[1]);
        return new NativeKey(
          info,
          rsaJwk,
          (alg, data, sig) => alg.nullParams && nat.rsaVerify(mod, exp, HASH_ID[alg.hash], data, sig) === 1,
        );
      }
      jwk = rsaJwk();
    }
  } else {
    const oid = decodeOid(buf.subarray(algOid.start, algOid.end));
    throw invalid('unsupported_key', `${what}: public key algorithm ${oid} is not supported; use ECDSA or RSA`);
  }
  const der = buf.subarray(spki.start, spki.end);
  const publicKey = jwk ? loadKey(what, { key: jwk, format: 'jwk' }) : loadKey(what, { key: der, format: 'der', type: 'spki' });
  return nodeKey(publicKey, jwk !== undefined, what);
}
