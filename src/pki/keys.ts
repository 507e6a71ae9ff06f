import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair as generateKeyPairCb,
  generateKeyPairSync,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import { AsnConvert } from '@peculiar/asn1-schema';
import { SubjectPublicKeyInfo } from '@peculiar/asn1-x509';
import { MeshcaError, invalid } from './errors.js';
import { OID } from './oids.js';

export const KEY_ALGORITHMS = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

export interface KeyInfo {
  family: 'ec' | 'rsa';
  /** P-256 or P-384 for EC keys. */
  curve?: string;
  bits: number;
  /** Human label: "EC P-256", "RSA 2048". */
  label: string;
}

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function parseKeyAlgorithm(value: string): KeyAlgorithm {
  const v = value.toLowerCase();
  if ((KEY_ALGORITHMS as readonly string[]).includes(v)) return v as KeyAlgorithm;
  throw invalid('bad_key_algorithm', `unknown key algorithm "${value}"; use one of ${KEY_ALGORITHMS.join(', ')}`);
}

/** Generates a key pair. RSA generation is slow (up to seconds for 4096 bits); callers on a hot path pre-generate. */
export function generateKeyPair(alg: KeyAlgorithm): KeyPair {
  const p = keyParams(alg);
  return p.type === 'ec' ? generateKeyPairSync('ec', p.options) : generateKeyPairSync('rsa', p.options);
}

const generateKeyPairCbAsync = promisify(generateKeyPairCb);

/** generateKeyPair off the event loop (libuv's thread pool): an RSA key would stall a busy server. */
export async function generateKeyPairAsync(alg: KeyAlgorithm): Promise<KeyPair> {
  const p = keyParams(alg);
  return p.type === 'ec' ? generateKeyPairCbAsync('ec', p.options) : generateKeyPairCbAsync('rsa', p.options);
}

function keyParams(alg: KeyAlgorithm): { type: 'ec'; options: { namedCurve: string } } | { type: 'rsa'; options: { modulusLength: number; publicExponent: number } } {
  switch (alg) {
    case 'ec-p256':
      return { type: 'ec', options: { namedCurve: 'prime256v1' } };
    case 'ec-p384':
      return { type: 'ec', options: { namedCurve: 'secp384r1' } };
    case 'rsa-2048':
    case 'rsa-3072':
    case 'rsa-4096':
      return { type: 'rsa', options: { modulusLength: Number(alg.slice(4)), publicExponent: 0x10001 } };
  }
}

const CURVE_NAMES: Record<string, string> = {
  prime256v1: 'P-256',
  'P-256': 'P-256',
  secp384r1: 'P-384',
  'P-384': 'P-384',
  secp521r1: 'P-521',
  'P-521': 'P-521',
};

/** Describes a key without judging it; see checkKeyPolicy for the rules. */
export function describeKey(key: KeyObject): KeyInfo {
  const type = key.asymmetricKeyType;
  const d = key.asymmetricKeyDetails ?? {};
  if (type === 'ec') {
    const curve = CURVE_NAMES[d.namedCurve ?? ''] ?? d.namedCurve ?? 'unknown';
    const bits = curve === 'P-256' ? 256 : curve === 'P-384' ? 384 : curve === 'P-521' ? 521 : 0;
    return { family: 'ec', curve, bits, label: `EC ${curve}` };
  }
  if (type === 'rsa') {
    const bits = d.modulusLength ?? 0;
    return { family: 'rsa', bits, label: `RSA ${bits}` };
  }
  throw invalid('unsupported_key', `unsupported key type "${type ?? 'unknown'}"; only ECDSA (P-256, P-384) and RSA (2048-4096 bits) are accepted`);
}

/** The key rules of the whole program: ECDSA P-256/P-384, RSA 2048 to 4096 bits. */
export function checkKeyPolicy(info: KeyInfo, what: string): void {
  if (info.family === 'rsa') {
    if (info.bits < 2048) {
      throw invalid('weak_key', `${what}: RSA key of ${info.bits} bits is below the 2048-bit minimum`);
    }
    if (info.bits > 4096) {
      throw invalid('bad_key_size', `${what}: RSA key of ${info.bits} bits is above the 4096-bit maximum`);
    }
    return;
  }
  if (info.curve !== 'P-256' && info.curve !== 'P-384') {
    throw invalid('bad_curve', `${what}: elliptic curve ${info.curve} is not accepted; use P-256 or P-384`);
  }
}

/** Reads the public key out of SubjectPublicKeyInfo DER, with a precise error for unknown algorithms or curves. */
export function publicKeyFromSpki(spkiDer: Uint8Array, what: string): KeyObject {
  let spki: SubjectPublicKeyInfo;
  try {
    spki = AsnConvert.parse(spkiDer, SubjectPublicKeyInfo);
  } catch (e) {
    throw invalid('bad_public_key', `${what}: public key info is not valid DER`, e);
  }
  const alg = spki.algorithm.algorithm;
  if (alg === OID.ecPublicKey) {
    const params = spki.algorithm.parameters;
    const curveOid = params ? decodeOid(Buffer.from(params)) : '';
    if (curveOid !== OID.prime256v1 && curveOid !== OID.secp384r1) {
      const known = curveOid === OID.secp521r1 ? 'P-521' : curveOid || 'none';
      throw invalid('bad_curve', `${what}: elliptic curve ${known} is not accepted; use P-256 or P-384`);
    }
  } else if (alg !== OID.rsaEncryption) {
    throw invalid('unsupported_key', `${what}: public key algorithm ${alg} is not supported; use ECDSA or RSA`);
  }
  try {
    return createPublicKey({ key: Buffer.from(spkiDer), format: 'der', type: 'spki' });
  } catch (e) {
    throw invalid('bad_public_key', `${what}: public key cannot be loaded`, e);
  }
}

/** Decodes a DER OBJECT IDENTIFIER (tag 06) to dotted form; '' when it is not one. */
export function decodeOid(der: Buffer): string {
  if (der.length < 3 || der[0] !== 0x06 || der[1] !== der.length - 2) return '';
  const parts: number[] = [];
  let v = 0;
  for (let i = 2; i < der.length; i++) {
    v = v * 128 + (der[i] & 0x7f);
    if ((der[i] & 0x80) === 0) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

export function spkiDer(publicKey: KeyObject): Buffer {
  return publicKey.export({ format: 'der', type: 'spki' });
}

/** RFC 5280 method 1 key identifier: SHA-1 of the subjectPublicKey BIT STRING contents (what openssl's "hash" gives). */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = AsnConvert.parse(spkiDer(publicKey), SubjectPublicKeyInfo);
  return createHash('sha1').update(Buffer.from(spki.subjectPublicKey)).digest();
}

export interface SignatureAlgorithm {
  oid: string;
  hash: 'sha256' | 'sha384' | 'sha512';
  /** Name as openssl prints it. */
  name: string;
  /** RSA algorithm identifiers carry explicit NULL parameters; ECDSA ones carry none. */
  nullParams: boolean;
}

const SIG_ALGS: Record<string, SignatureAlgorithm> = {
  [OID.ecdsaWithSHA256]: { oid: OID.ecdsaWithSHA256, hash: 'sha256', name: 'ecdsa-with-SHA256', nullParams: false },
  [OID.ecdsaWithSHA384]: { oid: OID.ecdsaWithSHA384, hash: 'sha384', name: 'ecdsa-with-SHA384', nullParams: false },
  [OID.ecdsaWithSHA512]: { oid: OID.ecdsaWithSHA512, hash: 'sha512', name: 'ecdsa-with-SHA512', nullParams: false },
  [OID.sha256WithRSA]: { oid: OID.sha256WithRSA, hash: 'sha256', name: 'sha256WithRSAEncryption', nullParams: true },
  [OID.sha384WithRSA]: { oid: OID.sha384WithRSA, hash: 'sha384', name: 'sha384WithRSAEncryption', nullParams: true },
  [OID.sha512WithRSA]: { oid: OID.sha512WithRSA, hash: 'sha512', name: 'sha512WithRSAEncryption', nullParams: true },
};

export function signatureAlgorithmByOid(oid: string): SignatureAlgorithm | undefined {
  return SIG_ALGS[oid];
}

/** The signature algorithm matched to the signer's key: ECDSA with the curve's hash, RSA with SHA-256. */
export function signatureAlgorithmFor(signer: KeyObject): SignatureAlgorithm {
  const info = describeKey(signer);
  if (info.family === 'ec') return info.curve === 'P-384' ? SIG_ALGS[OID.ecdsaWithSHA384] : SIG_ALGS[OID.ecdsaWithSHA256];
  return SIG_ALGS[OID.sha256WithRSA];
}

export function signData(alg: SignatureAlgorithm, key: KeyObject, data: Uint8Array): Buffer {
  return cryptoSign(alg.hash, data, key);
}

/** Verifies a signature made with the algorithm named by OID; unknown algorithms are an error, never a pass. */
export function verifyData(algOid: string, key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  const alg = SIG_ALGS[algOid];
  if (!alg) {
    throw new MeshcaError('invalid_argument', 'unsupported_signature', `signature algorithm ${algOid} is not supported`);
  }
  return verifyWith(alg, key, data, signature);
}

/** Verifies with a known algorithm: the algorithm family must match the key; errors are a failed check. */
export function verifyWith(alg: SignatureAlgorithm, key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  const fam = key.asymmetricKeyType;
  if ((alg.nullParams && fam !== 'rsa') || (!alg.nullParams && fam !== 'ec')) return false;
  try {
    return cryptoVerify(alg.hash, data, key, signature);
  } catch {
    return false;
  }
}

export function privateKeyToPem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'pkcs8' }) as string;
}

/** Loads a PEM private key (PKCS#8, PKCS#1 "RSA PRIVATE KEY" or SEC1 "EC PRIVATE KEY"). */
export function parsePrivateKeyPem(pem: string | Buffer, what = 'private key', passphrase?: string): KeyObject {
  try {
    return createPrivateKey({ key: pem, format: 'pem', passphrase });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    // Without a passphrase OpenSSL only says "interrupted or cancelled", so look at the PEM header too.
    const encrypted = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(pem.toString());
    if (encrypted || /passphrase|encrypted|bad decrypt/i.test(msg)) {
      throw invalid('encrypted_key', `${what}: the key is encrypted and no valid passphrase was given`, e);
    }
    throw invalid('bad_private_key', `${what}: not a readable PEM private key`, e);
  }
}

/** True when the private key belongs to the public key (compared on their SPKI encodings). */
export function keyMatches(privateKey: KeyObject, publicKey: KeyObject): boolean {
  const a = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const b = publicKey.export({ format: 'der', type: 'spki' });
  return a.equals(b);
}
