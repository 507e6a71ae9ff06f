import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ParsedCertificate } from '../pki/certificate.js';
import { errorMessage } from '../pki/errors.js';
import { PUBLIC_MODE, writeFileAtomic } from '../util/fs.js';
import type { Authority } from './authority.js';
import type { MaterialSource } from './material/source.js';

/**
 * The roots agents trust, as a file: the same path whatever signs (the local root, an upstream's
 * root, an issuer Secret's ca.crt), so one `meshca agent --ca-root` command works in every mode.
 * Not under root/: a root/ directory means a local root to the rest of meshca.
 */
export function trustBundlePath(dir: string): string {
  return join(resolve(dir), 'trust-bundle.pem');
}

export interface TrustBundleInputs {
  dir: string;
  authority: Pick<Authority, 'roots' | 'rootsKnown'>;
  material: Pick<MaterialSource, 'onSwap'>;
  log: { info(o: object, msg: string): void; error(o: object, msg: string): void };
}

/**
 * Writes the roots the CA publishes (/v1/trust-bundle) to trustBundlePath(dir), public material
 * only, and again whenever they change (a root rotation, a new upstream root). Returns the path.
 */
export function publishTrustBundle({ dir, authority, material, log }: TrustBundleInputs): string {
  const path = trustBundlePath(dir);
  let written: string | undefined;
  const write = (roots: ParsedCertificate[]): void => {
    // A stand-in CA (waiting for an issuer Secret) is nothing anyone should trust.
    if (!authority.rootsKnown() || roots.length === 0) return;
    const pem = roots.map((r) => r.pem).join('');
    if (pem === written) return;
    try {
      if (!existsSync(path) || readFileSync(path, 'utf8') !== pem) writeFileAtomic(path, pem, PUBLIC_MODE);
      if (written !== undefined) log.info({ path, roots: roots.map((r) => r.fingerprint256) }, `agents trust the new roots: ${path}`);
      written = pem;
    } catch (e) {
      log.error({ err: errorMessage(e), path }, 'cannot write the trust bundle; /v1/trust-bundle still serves the roots');
    }
  };
  write(authority.roots);
  material.onSwap((m) => write(m.roots));
  log.info({ path }, written === undefined ? `agents trust: ${path} (not written yet)` : `agents trust: ${path}`);
  return path;
}
