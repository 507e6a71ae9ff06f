import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The openssl CLI used as an independent referee in tests. */
export const OPENSSL = process.env.OPENSSL ?? '/usr/bin/openssl';

export interface OpensslResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs openssl and returns its output whatever the exit status, for tests that expect failures. */
export function openssl(args: string[], o: { input?: string | Buffer; cwd?: string } = {}): OpensslResult {
  try {
    const stdout = execFileSync(OPENSSL, args, { input: o.input, cwd: o.cwd, stdio: ['pipe', 'pipe', 'pipe'] }).toString('utf8');
    return { code: 0, stdout, stderr: '' };
  } catch (e) {
    const err = e as { status?: number; stdout?: Buffer; stderr?: Buffer };
    return { code: err.status ?? 1, stdout: err.stdout?.toString('utf8') ?? '', stderr: err.stderr?.toString('utf8') ?? '' };
  }
}

/** Runs openssl and throws with its stderr when it fails. */
export function opensslOk(args: string[], o: { input?: string | Buffer; cwd?: string } = {}): string {
  const r = openssl(args, o);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/**
 * `openssl verify -CAfile root [-untrusted chain] leaf`, with -x509_strict so that openssl
 * applies the RFC 5280 checks (AKI, key usage of CAs) that a mesh peer would.
 */
export function opensslVerify(rootFile: string, leafFile: string, untrustedFile?: string, extra: string[] = []): OpensslResult {
  const args = ['verify', '-x509_strict', ...extra, '-CAfile', rootFile];
  if (untrustedFile) args.push('-untrusted', untrustedFile);
  args.push(leafFile);
  return openssl(args);
}

/** `openssl x509 -text -noout` of a PEM file (the first certificate in it). */
export function x509Text(file: string): string {
  return opensslOk(['x509', '-in', file, '-text', '-noout']);
}

/** Generates a private key with `openssl genpkey`: 'rsa:2048', 'rsa:4096', 'ec:P-256', 'ec:P-384'. */
export function opensslGenKey(spec: string, outFile: string): void {
  const [kind, param] = spec.split(':');
  const args =
    kind === 'rsa'
      ? ['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${param}`, '-out', outFile]
      : ['genpkey', '-algorithm', 'EC', '-pkeyopt', `ec_paramgen_curve:${param}`, '-out', outFile];
  opensslOk(args);
}

/** Writes an openssl extension file and returns its path. */
export function writeExtFile(dir: string, name: string, lines: string[]): string {
  const p = join(dir, name);
  writeFileSync(p, `${lines.join('\n')}\n`);
  return p;
}

export interface OpensslCaFiles {
  cert: string;
  key: string;
}

/** A self-signed CA root made with `openssl req -x509` (the Istio tools/certs Makefile way). */
export function opensslRoot(
  dir: string,
  o: { keySpec?: string; subj?: string; days?: number; name?: string; keyFile?: string; extLines?: string[] } = {},
): OpensslCaFiles {
  const name = o.name ?? 'root';
  const key = o.keyFile ?? join(dir, `${name}-key.pem`);
  if (!o.keyFile) opensslGenKey(o.keySpec ?? 'ec:P-256', key);
  const cert = join(dir, `${name}-cert.pem`);
  const config = writeExtFile(dir, `${name}-req.cnf`, [
    '[req]',
    'distinguished_name = dn',
    '[dn]',
    '[v3_root]',
    ...(o.extLines ?? [
      'basicConstraints = critical, CA:true',
      'keyUsage = critical, digitalSignature, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
    ]),
  ]);
  opensslOk([
    'req',
    '-x509',
    '-new',
    '-key',
    key,
    '-sha256',
    '-days',
    String(o.days ?? 3650),
    '-subj',
    o.subj ?? '/O=Istio/CN=Root CA',
    '-config',
    config,
    '-extensions',
    'v3_root',
    '-out',
    cert,
  ]);
  return { cert, key };
}

/** A CA signed by `issuer` via `openssl req` + `openssl x509 -req -extfile` (the Gloo/Istio docs' recipe). */
export function opensslIntermediate(
  dir: string,
  issuer: OpensslCaFiles,
  o: { keySpec?: string; subj?: string; days?: number; name?: string; pathlen?: number; extLines?: string[] } = {},
): OpensslCaFiles {
  const name = o.name ?? 'ca';
  const key = join(dir, `${name}-key.pem`);
  opensslGenKey(o.keySpec ?? 'ec:P-256', key);
  const csr = join(dir, `${name}.csr`);
  opensslOk(['req', '-new', '-key', key, '-subj', o.subj ?? '/O=Istio/CN=Intermediate CA', '-out', csr]);
  const ext = writeExtFile(
    dir,
    `${name}.ext`,
    o.extLines ?? [
      `basicConstraints = critical, CA:true${o.pathlen === undefined ? '' : `, pathlen:${o.pathlen}`}`,
      'keyUsage = critical, digitalSignature, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid:always',
    ],
  );
  const cert = join(dir, `${name}-cert.pem`);
  opensslOk([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    issuer.cert,
    '-CAkey',
    issuer.key,
    '-CAcreateserial',
    '-sha256',
    '-days',
    String(o.days ?? 730),
    '-extfile',
    ext,
    '-out',
    cert,
  ]);
  return { cert, key };
}
