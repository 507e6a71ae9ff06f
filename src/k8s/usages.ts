import { MeshcaError } from '../pki/errors.js';
import type { KeyUsageName } from '../pki/extensions.js';
import { OID } from '../pki/oids.js';

/** A CertificateSigningRequest's spec.usages as X.509 extensions. */
export interface MappedUsages {
  keyUsages: KeyUsageName[];
  extKeyUsages: string[];
}

const KEY_USAGES: Record<string, KeyUsageName> = {
  signing: 'digitalSignature',
  'digital signature': 'digitalSignature',
  'content commitment': 'nonRepudiation',
  'key encipherment': 'keyEncipherment',
  'key agreement': 'keyAgreement',
  'data encipherment': 'dataEncipherment',
};

const EXT_KEY_USAGES: Record<string, string> = {
  'server auth': OID.serverAuth,
  'client auth': OID.clientAuth,
};

/**
 * Usages a workload signer must never grant: CA powers ("cert sign", "crl sign"), "any" (which
 * lifts every EKU restriction), and purposes outside service-to-service TLS.
 */
const REFUSED: Record<string, string> = {
  'cert sign': 'it would make the certificate a CA',
  'crl sign': 'it would let the certificate sign revocation lists',
  any: 'it would allow every extended key usage',
  'ocsp signing': 'a workload must not sign OCSP responses',
  'code signing': 'not a service-to-service TLS purpose',
  'email protection': 'not a service-to-service TLS purpose',
  's/mime': 'not a service-to-service TLS purpose',
  'ipsec end system': 'not a service-to-service TLS purpose',
  'ipsec tunnel': 'not a service-to-service TLS purpose',
  'ipsec user': 'not a service-to-service TLS purpose',
  timestamping: 'not a service-to-service TLS purpose',
  'microsoft sgc': 'obsolete',
  'netscape sgc': 'obsolete',
  'encipher only': 'only meaningful with key agreement for Diffie-Hellman keys',
  'decipher only': 'only meaningful with key agreement for Diffie-Hellman keys',
};

export const ALLOWED_USAGES = [...Object.keys(KEY_USAGES), ...Object.keys(EXT_KEY_USAGES)];

/** Maps spec.usages to keyUsage bits and EKU OIDs, refusing (unsupported_usage) anything a workload signer must not grant. */
export function mapUsages(usages: readonly string[] | undefined): MappedUsages {
  const keyUsages = new Set<KeyUsageName>();
  const ekus = new Set<string>();
  for (const u of usages ?? []) {
    const ku = KEY_USAGES[u];
    const eku = EXT_KEY_USAGES[u];
    if (ku) keyUsages.add(ku);
    else if (eku) ekus.add(eku);
    else {
      const why = REFUSED[u] ?? 'it is not a Kubernetes key usage';
      throw new MeshcaError(
        'invalid_argument',
        'unsupported_usage',
        `usage "${u}" is not granted by this signer: ${why}; allowed: ${ALLOWED_USAGES.join(', ')}`,
      );
    }
  }
  if (keyUsages.size === 0 && ekus.size === 0) {
    throw new MeshcaError('invalid_argument', 'unsupported_usage', `spec.usages is empty; ask for some of: ${ALLOWED_USAGES.join(', ')}`);
  }
  return { keyUsages: [...keyUsages], extKeyUsages: [...ekus] };
}

/** The usages a workload (Istio proxy) certificate needs, as the RA sends them. */
export const WORKLOAD_USAGES = ['digital signature', 'key encipherment', 'server auth', 'client auth'];
