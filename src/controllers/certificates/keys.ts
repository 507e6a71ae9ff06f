import type { KeyObject } from 'node:crypto';
import { generateKeyPair, type KeyAlgorithm } from '../../pki/keys.js';
import type { CertificateSpec } from '../../resources/certmanager.js';
import { generatingKey, type Progress } from '../../util/progress.js';

/** cert-manager's key defaults: RSA 2048, ECDSA P-256. */
export function desiredKey(spec: CertificateSpec): { family: 'rsa' | 'ec'; bits: number; alg: KeyAlgorithm } {
  const pk = spec.privateKey ?? {};
  if (pk.algorithm === 'ECDSA') {
    const bits = pk.size === 384 ? 384 : 256;
    return { family: 'ec', bits, alg: bits === 384 ? 'ec-p384' : 'ec-p256' };
  }
  const bits = pk.size ?? 2048;
  return { family: 'rsa', bits, alg: `rsa-${bits}` as KeyAlgorithm };
}

export function generateKeyFor(spec: CertificateSpec, progress?: Progress, purpose = 'a Certificate'): KeyObject {
  const { alg } = desiredKey(spec);
  return generatingKey(progress, alg, purpose, () => generateKeyPair(alg)).privateKey;
}

/** tls.key as cert-manager writes it: PKCS#1 ("RSA PRIVATE KEY") or SEC1 ("EC PRIVATE KEY") by default, or PKCS#8. */
export function encodeKey(key: KeyObject, encoding: 'PKCS1' | 'PKCS8' | undefined): string {
  if (encoding === 'PKCS8') return key.export({ format: 'pem', type: 'pkcs8' }) as string;
  if (key.asymmetricKeyType === 'ec') return key.export({ format: 'pem', type: 'sec1' }) as string;
  return key.export({ format: 'pem', type: 'pkcs1' }) as string;
}
