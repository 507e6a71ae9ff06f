import type { KeyObject } from 'node:crypto';
import { stringify } from 'yaml';
import { certsToPem, type ParsedCertificate } from '../pki/certificate.js';
import { privateKeyToPem } from '../pki/keys.js';
import { PRIVATE_MODE, type FileToWrite, writeFilesAtomic } from '../util/fs.js';
import { byCodeUnit } from '../util/order.js';

/** Istio's plugin-CA material: the signing CA, its key, the chain up to the root, and the trusted roots. */
export interface CaBundle {
  caCert: ParsedCertificate;
  caKey: KeyObject;
  /** ca-cert first, then any further intermediates, root last (Istio's cert-chain.pem). */
  chain: ParsedCertificate[];
  /** root-cert.pem: every trusted root (two during a root rotation). */
  roots: ParsedCertificate[];
}

export const ISTIO_FILES = ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem'] as const;
export const CERT_MANAGER_FILES = ['tls.crt', 'tls.key', 'ca.crt'] as const;

export function keyPem(key: KeyObject, passphrase?: string): string {
  if (!passphrase) return privateKeyToPem(key);
  return key.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase }) as string;
}

/** The four Istio files, keys in clear (istiod cannot read an encrypted key) unless a passphrase is given. */
export function istioBundleFiles(b: CaBundle, passphrase?: string): FileToWrite[] {
  return [
    { name: 'ca-cert.pem', data: b.caCert.pem },
    { name: 'ca-key.pem', data: keyPem(b.caKey, passphrase), mode: PRIVATE_MODE },
    { name: 'cert-chain.pem', data: certsToPem(b.chain) },
    { name: 'root-cert.pem', data: certsToPem(b.roots) },
  ];
}

export interface SecretOptions {
  name?: string;
  namespace?: string;
  /** Extra metadata (labels, annotations) merged into the Secret. */
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  type?: string;
}

/**
 * A Kubernetes Secret manifest with the given files as base64 data, in the shape that
 * `kubectl create secret generic NAME --from-file=... --dry-run=client -o yaml` prints.
 */
export function secretManifest(files: { name: string; data: string | Uint8Array }[], o: SecretOptions = {}): string {
  const data: Record<string, string> = {};
  for (const f of [...files].sort((a, b) => byCodeUnit(a.name, b.name))) {
    data[f.name] = Buffer.from(f.data).toString('base64');
  }
  const metadata: Record<string, unknown> = { creationTimestamp: null, name: o.name ?? 'cacerts' };
  if (o.labels) metadata.labels = o.labels;
  if (o.annotations) metadata.annotations = o.annotations;
  metadata.namespace = o.namespace ?? 'istio-system';
  const doc: Record<string, unknown> = { apiVersion: 'v1', data, kind: 'Secret', metadata };
  if (o.type) doc.type = o.type;
  return stringify(doc, { lineWidth: 0 });
}

/** Writes ca-cert.pem, ca-key.pem (0600), cert-chain.pem, root-cert.pem and cacerts.yaml, all or nothing. */
export function writeIstioBundle(outDir: string, b: CaBundle, o: SecretOptions = {}): string[] {
  const files = istioBundleFiles(b);
  const all: FileToWrite[] = [...files, { name: 'cacerts.yaml', data: secretManifest(files, o), mode: PRIVATE_MODE }];
  writeFilesAtomic(outDir, all);
  return all.map((f) => f.name);
}
