import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { certsToPem, parseCertificates, type ParsedCertificate } from '../pki/certificate.js';
import { MeshcaError } from '../pki/errors.js';
import { ROOT_CERT_FILE } from './issue.js';

/**
 * The roots the agent verifies the CA's serving certificate with, read again for every call:
 * `--ca-root` (which may be a mounted ConfigMap that changes) and the root-cert.pem the agent last
 * published, i.e. every root the CA announced in its last answer. During a root rotation the CA's
 * serving certificate moves to the new root; the agent learnt that root from an answer received
 * over a connection it had verified, so renewal keeps working without anyone editing --ca-root.
 */
export function caTrust(caRootFile: string, outDir: string, read: (p: string) => string = (p) => readFileSync(p, 'utf8')): () => string {
  const published = join(outDir, ROOT_CERT_FILE);
  return () => {
    const roots: ParsedCertificate[] = [];
    const problems: string[] = [];
    for (const path of [caRootFile, published]) {
      try {
        for (const c of parseCertificates(read(path), path)) if (!roots.some((r) => r.der.equals(c.der))) roots.push(c);
      } catch (e) {
        // The published file is absent before the first issuance; --ca-root may be mid-update.
        problems.push(`${path}: ${(e as Error).message}`);
      }
    }
    if (roots.length === 0) throw new MeshcaError('not_found', 'no_ca_root', `no root to verify the CA with: ${problems.join('; ')}`);
    return certsToPem(roots);
  };
}
