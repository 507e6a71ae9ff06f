import { parseCertificates, type ParsedCertificate } from '../../pki/certificate.js';
import { parseCsr } from '../../pki/csr.js';
import { MeshcaError } from '../../pki/errors.js';
import { keyMatches, parsePrivateKeyPem } from '../../pki/keys.js';
import type { KeyObject } from 'node:crypto';
import type { SecretSink } from '../../resources/secrets.js';
import { splitChain } from './chain.js';
import { signFromTemplate } from './template.js';
import type { IssuerBackend, SignRequest, SignResult } from './types.js';

interface CaKeyPair {
  chain: ParsedCertificate[];
  key: KeyObject;
  root?: ParsedCertificate;
}

/** Reads tls.crt/tls.key (or Istio's ca-cert.pem/ca-key.pem) from a CA secret, with cert-manager's messages. */
export async function loadCaKeyPair(secrets: SecretSink, namespace: string, name: string): Promise<CaKeyPair> {
  const s = await secrets.get({ namespace, name });
  const fail = (why: string) => new MeshcaError('failed_precondition', 'ca_keypair', `error getting keypair for CA issuer: ${why}`);
  if (!s) throw fail(`secret "${namespace}/${name}" not found`);
  const certPem = s.data['tls.crt'] ?? s.data['ca-cert.pem'];
  const keyPem = s.data['tls.key'] ?? s.data['ca-key.pem'];
  if (!certPem) throw fail(`secret "${namespace}/${name}" has no tls.crt`);
  if (!keyPem) throw fail(`secret "${namespace}/${name}" has no tls.key`);
  let chain: ParsedCertificate[];
  let key: KeyObject;
  try {
    chain = parseCertificates(certPem.toString('utf8'), `secret ${namespace}/${name} tls.crt`);
    key = parsePrivateKeyPem(keyPem, `secret ${namespace}/${name} tls.key`);
  } catch (e) {
    throw fail((e as Error).message);
  }
  if (!chain[0].isCA) throw fail('certificate is not a CA');
  if (!keyMatches(key, chain[0].publicKey)) throw fail('the private key does not match the certificate');
  const rootPem = s.data['ca.crt'] ?? s.data['root-cert.pem'];
  let root: ParsedCertificate | undefined;
  if (rootPem) {
    try {
      root = parseCertificates(rootPem.toString('utf8'), `secret ${namespace}/${name} ca.crt`)[0];
    } catch {
      root = undefined;
    }
  }
  return { chain, key, root };
}

/** cert-manager's CA issuer: signs with the key pair in `spec.ca.secretName`. */
export function caBackend(secrets: SecretSink, namespace: string, secretName: string): IssuerBackend {
  return {
    notReadyReason: 'ErrInvalidKeyPair',
    async verify() {
      await loadCaKeyPair(secrets, namespace, secretName);
      return { reason: 'KeyPairVerified', message: 'Signing CA verified' };
    },
    async sign(req: SignRequest): Promise<SignResult> {
      const ca = await loadCaKeyPair(secrets, namespace, secretName);
      const cert = signFromTemplate({
        csr: parseCsr(req.csrPem),
        issuerCert: ca.chain[0],
        issuerKey: ca.key,
        durationMs: req.durationMs,
        isCA: req.isCA,
        usages: req.usages,
        now: req.now,
      });
      return splitChain([cert, ...ca.chain], ca.root);
    },
  };
}
