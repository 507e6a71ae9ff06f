import type { KeyObject } from 'node:crypto';
import { certLabel, parseCertificates, type ParsedCertificate } from '../pki/certificate.js';
import { verifyChain } from '../pki/chain.js';
import { formatTimeLeft } from '../pki/describe.js';
import { errorMessage } from '../pki/errors.js';
import { checkKeyPolicy, keyMatches, parsePrivateKeyPem } from '../pki/keys.js';
import type { CaBundle } from './bundle.js';

/** File name to contents, as read from a bundle directory or a Secret's data. */
export type BundleContents = Record<string, string>;

export type BundleLayout = 'istio' | 'cert-manager';

/** Which file plays which part in each layout istiod reads. */
export const LAYOUT_FILES: Record<BundleLayout, { cert: string; key: string; chain: string; root: string }> = {
  istio: { cert: 'ca-cert.pem', key: 'ca-key.pem', chain: 'cert-chain.pem', root: 'root-cert.pem' },
  // cert-manager's tls.crt holds the CA certificate followed by any intermediates above it.
  'cert-manager': { cert: 'tls.crt', key: 'tls.key', chain: 'tls.crt', root: 'ca.crt' },
};

export function detectLayout(files: BundleContents): BundleLayout | undefined {
  if (['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem'].some((n) => n in files)) return 'istio';
  if ('tls.crt' in files || 'tls.key' in files) return 'cert-manager';
  return undefined;
}

export interface BundleCheckOptions {
  now: Date;
  /** Certificates expiring sooner than this are warned about (default 30 days). */
  warnWithinMs?: number;
}

export interface BundleReport {
  layout?: BundleLayout;
  ok: boolean;
  errors: string[];
  warnings: string[];
  /** The parsed bundle with its chain normalised to CA ... root; present only when ok. */
  bundle?: CaBundle;
}

const THIRTY_DAYS = 30 * 86_400_000;

function parseCerts(files: BundleContents, name: string, errors: string[]): ParsedCertificate[] {
  if (!(name in files)) return [];
  try {
    return parseCertificates(files[name], name);
  } catch (e) {
    const msg = errorMessage(e);
    errors.push(msg.startsWith(name) ? msg : `${name}: ${msg}`);
    return [];
  }
}

/**
 * Validates a plugin-CA bundle as istiod would use it, and reports every problem at once:
 * missing files, a key that does not match, a signing certificate that is not a CA, a chain in
 * the wrong order or not reaching the root, a pathlen too small for the CA to sign workloads,
 * and expired (error) or soon-expiring (warning) certificates.
 */
export function checkBundle(files: BundleContents, o: BundleCheckOptions): BundleReport {
  const layout = detectLayout(files);
  if (!layout) {
    return {
      ok: false,
      errors: ['no plugin-CA files found: expected ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem (or tls.crt, tls.key, ca.crt)'],
      warnings: [],
    };
  }
  const names = LAYOUT_FILES[layout];
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const n of new Set(Object.values(names))) {
    if (n in files) continue;
    errors.push(n === names.root ? `${n} is missing: the bundle has no root certificate to anchor trust` : `${n} is missing`);
  }

  const certFile = parseCerts(files, names.cert, errors);
  const chainFile = names.chain === names.cert ? certFile : parseCerts(files, names.chain, errors);
  const roots = parseCerts(files, names.root, errors);
  let key: KeyObject | undefined;
  if (names.key in files) {
    try {
      key = parsePrivateKeyPem(files[names.key], names.key);
    } catch (e) {
      errors.push(errorMessage(e));
    }
  }
  const caCert = certFile[0];
  if (layout === 'istio' && certFile.length > 1) {
    errors.push(`${names.cert} holds ${certFile.length} certificates; it must hold only the signing CA (put the rest in ${names.chain})`);
  }
  if (!caCert) return { layout, ok: false, errors, warnings };

  const label = `${names.cert} ${certLabel(caCert)}`;
  try {
    checkKeyPolicy(caCert.keyInfo, label);
  } catch (e) {
    errors.push(errorMessage(e));
  }
  if (!caCert.isCA) errors.push(`${label} is not a CA (basicConstraints CA:TRUE missing), so it cannot sign workload certificates`);
  if (caCert.ext.keyUsage && !caCert.ext.keyUsage.usages.includes('keyCertSign')) {
    errors.push(`${label} lacks the keyCertSign key usage, so it cannot sign workload certificates`);
  }
  if (key && !keyMatches(key, caCert.publicKey)) errors.push(`${names.key} does not match the public key of ${label}`);

  // The chain as istiod hands it to workloads must start with the signing CA.
  let chain = chainFile;
  if (chainFile.length > 0 && !chainFile[0].der.equals(caCert.der)) {
    const at = chainFile.findIndex((c) => c.der.equals(caCert.der));
    errors.push(
      at < 0
        ? `${names.chain} does not contain ${label}; it must start with the signing CA, then intermediates, then the root`
        : `wrong chain order: ${names.chain} must start with ${label} but it is certificate #${at + 1}`,
    );
    chain = [caCert, ...chainFile.filter((c) => !c.der.equals(caCert.der))];
  }
  if (chain.length === 0) chain = [caCert];

  const result = verifyChain(chain, { now: o.now, roots });
  // chain.ts counts pathlen for `chain[0]` as the leaf; here chain[0] is itself a CA that will sign
  // leaves, so it counts as one more intermediate. That stricter check replaces chain.ts's.
  errors.push(...result.problems.filter((p) => !p.startsWith('pathlen violation')));
  const path = result.path;
  for (let i = 1; i < path.length; i++) {
    const pathLen = path[i].ext.basicConstraints?.pathLen;
    const below = path.slice(0, i).filter((c) => !c.selfIssued).length;
    if (pathLen !== undefined && below > pathLen) {
      errors.push(
        `pathlen too small: ${certLabel(path[i])} has pathlen ${pathLen} but ${below} CA certificate(s) sit below it ` +
          `once ${certLabel(caCert)} signs workloads`,
      );
    }
  }
  if (result.ok && layout === 'istio' && result.anchor && !chainFile.some((c) => c.der.equals(result.anchor!.der))) {
    warnings.push(`${names.chain} does not end with the root ${certLabel(result.anchor)}; Istio expects the intermediate(s) then the root`);
  }

  const warnWithin = o.warnWithinMs ?? THIRTY_DAYS;
  const seen = new Set<string>();
  for (const c of [...path, ...roots]) {
    if (seen.has(c.fingerprint256)) continue;
    seen.add(c.fingerprint256);
    const left = c.notAfter.getTime() - o.now.getTime();
    // Expired certificates on the path are already errors from verifyChain.
    if (left >= 0 && left < warnWithin) {
      warnings.push(`${certLabel(c)} expires in ${formatTimeLeft(left)} (${c.notAfter.toISOString()})`);
    } else if (left < 0 && !path.includes(c)) {
      errors.push(`${names.root} ${certLabel(c)} expired at ${c.notAfter.toISOString()}`);
    }
  }

  const ok = errors.length === 0;
  return {
    layout,
    ok,
    errors,
    warnings,
    bundle: ok && key ? { caCert, caKey: key, chain: path, roots } : undefined,
  };
}
