import { isIP } from 'node:net';
import { generateKeyPair, privateKeyToPem } from '../pki/keys.js';
import type { Signer } from '../pki/issue.js';
import { encodePem } from '../pki/pem.js';
import { createLeafCertificate } from '../pki/profiles.js';

export interface ServingCertificate {
  /** Leaf then the issuing CA chain, without the self-signed root (clients hold it). */
  certChainPem: string;
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
  sans: string[];
}

/**
 * The gRPC serving certificate: a fresh P-256 key, signed by the cluster intermediate like any
 * workload, but for DNS names and IPs (istiod.istio-system.svc, localhost, 127.0.0.1) so that
 * istio-agent's default server-name check passes.
 */
export function issueServingCertificate(signer: Signer, sans: string[], ttlSeconds: number, now: Date): ServingCertificate {
  const kp = generateKeyPair('ec-p256');
  const leaf = createLeafCertificate({
    issuerCert: signer.cert,
    issuerKey: signer.key,
    publicKey: kp.publicKey,
    sans: { dnsNames: sans.filter((s) => isIP(s) === 0), ipAddresses: sans.filter((s) => isIP(s) !== 0) },
    ttlSeconds,
    now,
  });
  const above = [signer.cert, ...signer.chain].filter((c) => !c.selfIssued);
  return {
    certChainPem: encodePem('CERTIFICATE', leaf.der) + above.map((c) => c.pem).join(''),
    keyPem: privateKeyToPem(kp.privateKey),
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    sans,
  };
}
