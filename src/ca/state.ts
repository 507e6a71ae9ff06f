import type { KeyObject } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { certLabel, parseCertificate, parseCertificates, type ParsedCertificate } from '../pki/certificate.js';
import { MeshcaError, invalid } from '../pki/errors.js';
import type { Signer } from '../pki/issue.js';
import { checkKeyPolicy, generateKeyPair, keyMatches, parsePrivateKeyPem, type KeyAlgorithm } from '../pki/keys.js';
import type { SubjectSpec } from '../pki/name.js';
import { createIntermediateCertificate, createRootCertificate } from '../pki/profiles.js';
import { PRIVATE_MODE, type FileToWrite, writeFilesAtomic } from '../util/fs.js';
import { generatingKey, type Progress } from '../util/progress.js';
import { istioBundleFiles, keyPem, type CaBundle } from './bundle.js';
import { decryptKey } from './stored-key.js';

/** Where meshca keeps its CA material when no --dir is given. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.MESHCA_HOME || '.meshca');
}

const CLUSTER_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function validateClusterName(name: string): string {
  if (!CLUSTER_RE.test(name)) {
    throw invalid(
      'bad_cluster_name',
      `cluster name "${name}" must be a DNS label: lowercase letters, digits and "-", at most 63 characters`,
    );
  }
  return name;
}

export interface RootMaterial {
  cert: ParsedCertificate;
  /** Absent when the root was imported without its key: intermediates must then come from elsewhere. */
  key?: KeyObject;
}

export interface InitRootOptions {
  alg: KeyAlgorithm;
  subject?: SubjectSpec;
  days?: number;
  now: Date;
  force?: boolean;
}

export interface IntermediateRequest {
  alg: KeyAlgorithm;
  days: number;
  pathLen?: number;
  subject?: SubjectSpec;
  now: Date;
}

/**
 * The state directory: the root (root/root-cert.pem, root/root-key.pem) and one Istio plugin-CA
 * bundle per cluster (clusters/<name>/cacerts/). Keys are written 0600, atomically, and encrypted
 * (PKCS#8, AES-256-CBC) when a passphrase is configured.
 */
export class CaState {
  readonly dir: string;
  private readonly passphrase?: string;
  private readonly progress?: Progress;

  /** `progress` hears of key generations that take seconds, for the command to say what it waits for. */
  constructor(dir: string, opts: { passphrase?: string; progress?: Progress } = {}) {
    this.dir = resolve(dir);
    this.passphrase = opts.passphrase || undefined;
    this.progress = opts.progress;
  }

  get rootCertPath(): string {
    return join(this.dir, 'root', 'root-cert.pem');
  }
  get rootKeyPath(): string {
    return join(this.dir, 'root', 'root-key.pem');
  }
  clusterDir(name: string): string {
    return join(this.dir, 'clusters', validateClusterName(name), 'cacerts');
  }

  hasRoot(): boolean {
    return existsSync(this.rootCertPath);
  }

  private refuseOverwrite(force: boolean | undefined): void {
    if (this.hasRoot() && !force) {
      throw new MeshcaError('already_exists', 'root_exists', `a root already exists in ${this.rootCertPath}; pass --force to replace it`);
    }
  }

  initRoot(o: InitRootOptions): ParsedCertificate {
    this.refuseOverwrite(o.force);
    const kp = generatingKey(this.progress, o.alg, 'the root', () => generateKeyPair(o.alg));
    const cert = createRootCertificate({ key: kp.privateKey, subject: o.subject, days: o.days, now: o.now });
    this.writeRoot(cert, kp.privateKey);
    return cert;
  }

  /** Adopts an existing root; the key is optional but must match when given. */
  importRoot(certPem: string, keyPemText: string | undefined, o: { force?: boolean; keyPassphrase?: string } = {}): RootMaterial {
    this.refuseOverwrite(o.force);
    const certs = parseCertificates(certPem, 'root certificate');
    if (certs.length !== 1) throw invalid('bad_root', `root certificate file holds ${certs.length} certificates; give exactly one`);
    const cert = certs[0];
    checkKeyPolicy(cert.keyInfo, `root certificate ${certLabel(cert)}`);
    if (!cert.isCA) throw invalid('not_ca', `${certLabel(cert)} is not a CA certificate (basicConstraints CA:TRUE missing)`);
    if (!cert.selfIssued || !cert.node.verify(cert.publicKey)) {
      throw invalid('not_self_signed', `${certLabel(cert)} is not self-signed; import the top of your hierarchy as the root`);
    }
    if (cert.ext.keyUsage && !cert.ext.keyUsage.usages.includes('keyCertSign')) {
      throw invalid('no_keycertsign', `${certLabel(cert)} lacks the keyCertSign key usage`);
    }
    let key: KeyObject | undefined;
    if (keyPemText !== undefined) {
      key = parsePrivateKeyPem(keyPemText, 'root key', o.keyPassphrase);
      if (!keyMatches(key, cert.publicKey))
        throw invalid('key_mismatch', `the root key does not match the public key of ${certLabel(cert)}`);
    }
    this.writeRoot(cert, key);
    return { cert, key };
  }

  private writeRoot(cert: ParsedCertificate, key: KeyObject | undefined): void {
    const files: FileToWrite[] = [{ name: 'root-cert.pem', data: cert.pem }];
    if (key) files.push({ name: 'root-key.pem', data: keyPem(key, this.passphrase), mode: PRIVATE_MODE });
    writeFilesAtomic(join(this.dir, 'root'), files);
    // A root imported without its key must not leave an older root's key behind.
    if (!key) rmSync(this.rootKeyPath, { force: true });
  }

  /** Loads the root; a missing or unreadable root is a clear error, never a reason to mint a new one. */
  loadRoot(): RootMaterial {
    if (!this.hasRoot()) {
      throw new MeshcaError('not_found', 'no_root', `no root in ${this.dir}; run \`meshca init\` or \`meshca root import\` first`);
    }
    let cert: ParsedCertificate;
    try {
      cert = parseCertificate(readFileSync(this.rootCertPath, 'utf8'), this.rootCertPath);
    } catch (e) {
      throw new MeshcaError(
        'failed_precondition',
        'corrupt_state',
        `the root certificate ${this.rootCertPath} is unreadable: ${(e as Error).message}`,
        { cause: e },
      );
    }
    let key: KeyObject | undefined;
    if (existsSync(this.rootKeyPath)) {
      key = this.readKey(this.rootKeyPath);
      if (!keyMatches(key, cert.publicKey)) {
        throw new MeshcaError('failed_precondition', 'corrupt_state', `${this.rootKeyPath} does not match ${this.rootCertPath}`);
      }
    }
    return { cert, key };
  }

  private readKey(path: string): KeyObject {
    const mode = statSync(path).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new MeshcaError(
        'failed_precondition',
        'insecure_key_file',
        `${path} is readable by group or others (mode ${mode.toString(8)}); run chmod 600 ${path}`,
      );
    }
    return decryptKey(readFileSync(path), path, this.passphrase);
  }

  /** Creates (or replaces) a cluster's intermediate signed by the root and stores its bundle. */
  createIntermediate(cluster: string, r: IntermediateRequest): CaBundle & { clamped: boolean } {
    const dir = this.clusterDir(cluster);
    const root = this.loadRoot();
    if (!root.key) {
      throw new MeshcaError(
        'failed_precondition',
        'no_root_key',
        `the root in ${this.dir} was imported without its key; sign intermediates with the root's owner (or an upstream CA)`,
      );
    }
    const kp = generatingKey(this.progress, r.alg, `the intermediate of cluster "${cluster}"`, () => generateKeyPair(r.alg));
    const subject = r.subject ?? {
      organization: [root.cert.subject.match(/O = ([^,]+)/)?.[1] ?? 'cluster.local'],
      commonName: `meshca intermediate ${cluster}`,
    };
    const { cert, clamped } = createIntermediateCertificate({
      issuerCert: root.cert,
      issuerKey: root.key,
      publicKey: kp.publicKey,
      subject,
      days: r.days,
      pathLen: r.pathLen,
      now: r.now,
    });
    const bundle: CaBundle = { caCert: cert, caKey: kp.privateKey, chain: [cert, root.cert], roots: [root.cert] };
    writeFilesAtomic(dir, istioBundleFiles(bundle, this.passphrase));
    return { ...bundle, clamped };
  }

  hasCluster(name: string): boolean {
    return existsSync(join(this.clusterDir(name), 'ca-cert.pem'));
  }

  /** Stores a validated plugin-CA bundle made elsewhere (see bundle-check.ts) as a cluster's intermediate. */
  adoptCluster(cluster: string, bundle: CaBundle, o: { force?: boolean } = {}): void {
    if (this.hasCluster(cluster) && !o.force) {
      throw new MeshcaError(
        'already_exists',
        'cluster_exists',
        `cluster "${cluster}" already has an intermediate in ${this.clusterDir(cluster)}; pass --force to replace it`,
      );
    }
    writeFilesAtomic(this.clusterDir(cluster), istioBundleFiles(bundle, this.passphrase));
  }

  listClusters(): string[] {
    const d = join(this.dir, 'clusters');
    if (!existsSync(d)) return [];
    return readdirSync(d)
      .filter((n) => CLUSTER_RE.test(n) && existsSync(join(d, n, 'cacerts', 'ca-cert.pem')))
      .sort();
  }

  /** Loads a cluster's bundle, checking that key, certificate and chain belong together. */
  loadCluster(cluster: string): CaBundle {
    const dir = this.clusterDir(cluster);
    if (!existsSync(join(dir, 'ca-cert.pem'))) {
      throw new MeshcaError(
        'not_found',
        'no_cluster',
        `cluster "${cluster}" has no intermediate in ${dir}; run \`meshca intermediate --cluster ${cluster} --out DIR\` first`,
      );
    }
    try {
      const caCert = parseCertificate(readFileSync(join(dir, 'ca-cert.pem'), 'utf8'), join(dir, 'ca-cert.pem'));
      const caKey = this.readKey(join(dir, 'ca-key.pem'));
      if (!keyMatches(caKey, caCert.publicKey)) throw new Error(`ca-key.pem does not match ca-cert.pem in ${dir}`);
      const chain = parseCertificates(readFileSync(join(dir, 'cert-chain.pem'), 'utf8'), join(dir, 'cert-chain.pem'));
      const roots = parseCertificates(readFileSync(join(dir, 'root-cert.pem'), 'utf8'), join(dir, 'root-cert.pem'));
      return { caCert, caKey, chain, roots };
    } catch (e) {
      if (e instanceof MeshcaError && e.code === 'failed_precondition') throw e;
      throw new MeshcaError('failed_precondition', 'corrupt_state', `cluster "${cluster}" bundle is unreadable: ${(e as Error).message}`, {
        cause: e,
      });
    }
  }

  /** The signer for workload certificates of a cluster: its intermediate and the chain above it. */
  signer(cluster: string): Signer {
    const b = this.loadCluster(cluster);
    return signerFromBundle(b);
  }
}

export function signerFromBundle(b: CaBundle): Signer {
  const above = b.chain.filter((c) => !c.der.equals(b.caCert.der));
  return { cert: b.caCert, key: b.caKey, chain: above };
}
