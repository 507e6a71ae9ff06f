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
import { TAG, bitLength, readTlv } from './fast/der.js';

export const KEY_ALGORITHMS = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];
/** Every command that creates a CA key defaults to this: Istio's own default (self-signed root, istio-agent). */
export const DEFAULT_KEY_ALGORITHM: KeyAlgorithm = 'rsa-2048';

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

/**
 * Generates a key pair. RSA generation is slow (up to seconds for 4096 bits); callers on a hot path pre-generate.
 *
 * The keys are re-read from their DER encodings instead of being Node's generated KeyObjects. Node 20 shares
 * one mutex between a generated key and the job that made it, locks that mutex while it builds
 * `asymmetricKeyDetails` or a JWK, and locks it again when the garbage collector destroys the job; a collection
 * that starts inside such a call deadlocks the process (seen twice in CI, confirmed with gdb). A key parsed from
 * DER shares nothing with the job, so no caller, library or ours, can hit that.
 */
export function generateKeyPair(alg: KeyAlgorithm): KeyPair {
  const p = keyParams(alg);
  return p.type === 'ec' ? generateKeyPairWith('ec', p.options) : generateKeyPairWith('rsa', p.options);
}

/** generateKeyPair for any curve or modulus Node knows (tests make keys the policy refuses); the same DER re-read. */
export function generateKeyPairWith(type: 'ec', options: { namedCurve: string }): KeyPair;
export function generateKeyPairWith(type: 'rsa', options: { modulusLength: number; publicExponent?: number }): KeyPair;
export function generateKeyPairWith(
  type: 'ec' | 'rsa',
  options: { namedCurve?: string; modulusLength?: number; publicExponent?: number },
): KeyPair {
  const { publicKeyEncoding, privateKeyEncoding } = DER_ENCODINGS;
  const der =
    type === 'ec'
      ? generateKeyPairSync('ec', { namedCurve: options.namedCurve ?? '', publicKeyEncoding, privateKeyEncoding })
      : generateKeyPairSync('rsa', {
          modulusLength: options.modulusLength ?? 0,
          publicExponent: options.publicExponent,
          publicKeyEncoding,
          privateKeyEncoding,
        });
  return fromDer(der);
}

/** Key generations a person waits for (seconds for RSA-4096 on a small machine); the others take milliseconds. */
export function keyGenerationIsSlow(alg: KeyAlgorithm): boolean {
  return alg === 'rsa-3072' || alg === 'rsa-4096';
}

const generateKeyPairCbAsync = promisify(generateKeyPairCb);

/** generateKeyPair off the event loop (libuv's thread pool): an RSA key would stall a busy server. */
export async function generateKeyPairAsync(alg: KeyAlgorithm): Promise<KeyPair> {
  const p = keyParams(alg);
  const { publicKeyEncoding, privateKeyEncoding } = DER_ENCODINGS;
  const der =
    p.type === 'ec'
      ? await generateKeyPairCbAsync('ec', { ...p.options, publicKeyEncoding, privateKeyEncoding })
      : await generateKeyPairCbAsync('rsa', { ...p.options, publicKeyEncoding, privateKeyEncoding });
  return fromDer(der);
}

const DER_ENCODINGS = {
  publicKeyEncoding: { type: 'spki', format: 'der' },
  privateKeyEncoding: { type: 'pkcs8', format: 'der' },
} as const;

function fromDer(der: { publicKey: Buffer; privateKey: Buffer }): KeyPair {
  const privateKey = createPrivateKey({ key: der.privateKey, format: 'der', type: 'pkcs8' });
  der.privateKey.fill(0);
  return { privateKey, publicKey: createPublicKey({ key: der.publicKey, format: 'der', type: 'spki' }) };
}

function keyParams(
  alg: KeyAlgorithm,
): { type: 'ec'; options: { namedCurve: string } } | { type: 'rsa'; options: { modulusLength: number; publicExponent: number } } {
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

const CURVE_BY_OID: Record<string, { curve: string; bits: number }> = {
  [OID.prime256v1]: { curve: 'P-256', bits: 256 },
  [OID.secp384r1]: { curve: 'P-384', bits: 384 },
  [OID.secp521r1]: { curve: 'P-521', bits: 521 },
};

/**
 * Describes a key without judging it; see checkKeyPolicy for the rules.
 *
 * The curve and the modulus size are read from the key's SubjectPublicKeyInfo, never from
 * `asymmetricKeyDetails`: Node 20 builds that object while holding the key's mutex, which can deadlock
 * against the garbage collector (see generateKeyPair). Exporting SPKI DER takes no such lock.
 */
export function describeKey(key: KeyObject): KeyInfo {
  const type = key.asymmetricKeyType;
  if (type !== 'ec' && type !== 'rsa') {
    throw invalid(
      'unsupported_key',
      `unsupported key type "${type ?? 'unknown'}"; only ECDSA (P-256, P-384) and RSA (2048-4096 bits) are accepted`,
    );
  }
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const shape = spkiShape(spkiDer(pub));
  if (type === 'ec') {
    const known = CURVE_BY_OID[shape.param];
    const curve = known?.curve ?? (shape.param || 'unknown');
    return { family: 'ec', curve, bits: known?.bits ?? 0, label: `EC ${curve}` };
  }
  return { family: 'rsa', bits: shape.bits, label: `RSA ${shape.bits}` };
}

/** The curve OID (EC) or the modulus length in bits (RSA) of an SPKI that OpenSSL wrote. */
function spkiShape(der: Buffer): { param: string; bits: number } {
  const top = readTlv(der, 0, der.length);
  const algId = readTlv(der, top.body, top.end);
  const algOid = readTlv(der, algId.body, algId.end);
  const bitString = readTlv(der, algId.end, top.end);
  if (algOid.end < algId.end) {
    const p = readTlv(der, algOid.end, algId.end);
    if (p.tag === TAG.OID) return { param: decodeOid(der.subarray(algOid.end, p.end)), bits: 0 };
  }
  // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }, after the unused-bits octet.
  const rsa = readTlv(der, bitString.body + 1, bitString.end);
  const n = readTlv(der, rsa.body, rsa.end);
  let i = n.body;
  while (i < n.end && der[i] === 0) i++; // the sign octet
  return { param: '', bits: i === n.end ? 0 : bitLength(der, i, n.end) };
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
