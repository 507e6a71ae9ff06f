import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { durationSeconds } from '../config/duration.js';
import { CONFIG_FILE_NAME } from '../config/load.js';
import { flattenUpstreamBlock } from '../config/upstream.js';
import { CaState } from '../ca/state.js';
import { trustBundlePath } from '../ca/trust-bundle-file.js';
import { decryptKey } from '../ca/stored-key.js';
import { failedResources, type FailedResource } from '../controllers/failures.js';
import { parseCertificate, parseCertificates, type ParsedCertificate } from '../pki/certificate.js';
import { errorMessage } from '../pki/errors.js';
import { keyMatches } from '../pki/keys.js';
import { FileResourceStore } from '../resources/file-store.js';
import { CACERTS, FileSecretSink } from '../resources/file-secrets.js';
import { RTP_DEFAULTS, type RootTrustPolicy } from '../resources/gloo.js';
import type { Certificate, CertificateSpec } from '../resources/certmanager.js';
import { CERTIFICATE, CLUSTER, ROOT_TRUST_POLICY } from '../resources/kinds.js';
import type { Resource } from '../resources/meta.js';
import { OWNER_ANNOTATION } from '../resources/secrets.js';
import { DB_FILE_NAME } from '../store/sqlite/index.js';
import { MIGRATIONS } from '../store/sqlite/migrations.js';

/** A private key file as found: its mode and whether it belongs to its certificate (undefined: could not tell). */
export interface KeyFile {
  path: string;
  mode: number;
  matches?: boolean;
  error?: string;
}

export interface ClusterSnapshot {
  name: string;
  dir: string;
  /** Registered as a Cluster resource (a RootTrustPolicy issues it an intermediate). */
  registered: boolean;
  caCert?: ParsedCertificate;
  chain: ParsedCertificate[];
  roots: ParsedCertificate[];
  readError?: string;
  key?: KeyFile;
  /** The meshca.io/owner annotation of its cacerts, e.g. RootTrustPolicy/gloo-mesh/root-trust-policy. */
  owner?: string;
  /** The owning policy's renewal ratio, when the owner is a RootTrustPolicy that exists. */
  policyRatio?: number;
}

/** A cert-manager Certificate and what its Secret holds (tls.crt, tls.key, ca.crt). */
export interface CertificateSnapshot {
  /** namespace/name */
  name: string;
  secretDir: string;
  spec: Pick<CertificateSpec, 'renewBefore' | 'renewBeforePercentage'>;
  /** tls.crt: the certificate, then its chain. */
  chain: ParsedCertificate[];
  /** ca.crt: what the chain is checked against. */
  cas: ParsedCertificate[];
  readError?: string;
  key?: KeyFile;
}

export interface StateSnapshot {
  dir: string;
  rootPath: string;
  root?: ParsedCertificate;
  rootError?: string;
  rootKey?: KeyFile;
  clusters: ClusterSnapshot[];
  certificates?: CertificateSnapshot[];
  /** DIR/trust-bundle.pem, which serve writes in every mode: the roots agents are told to trust. */
  trustBundle?: { path: string; roots: ParsedCertificate[]; error?: string };
  failed: FailedResource[];
  resourcesError?: string;
  database?: { path: string; mode: number; schema?: number; latest: number; error?: string };
  /** `renewBefore` of meshca.yaml in the state directory: serve's lead time for renewing intermediates. */
  serveRenewBefore?: { seconds: number; file: string };
}

function serveRenewBefore(dir: string): StateSnapshot['serveRenewBefore'] {
  const file = join(dir, CONFIG_FILE_NAME);
  if (!existsSync(file)) return undefined;
  try {
    const doc = parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown> | null;
    // Either spelling serve accepts: renewBefore, or upstream: {renewBefore}.
    const v = doc && typeof doc === 'object' ? flattenUpstreamBlock(doc, file).renewBefore : undefined;
    const seconds = typeof v === 'string' || typeof v === 'number' ? durationSeconds(v) : undefined;
    return seconds === undefined ? undefined : { seconds, file };
  } catch {
    // serve reports a broken meshca.yaml itself; here it only lends a default.
    return undefined;
  }
}

function readKeyFile(path: string, cert: ParsedCertificate | undefined, passphrase: string | undefined): KeyFile {
  const mode = statSync(path).mode & 0o777;
  try {
    const key = decryptKey(readFileSync(path), path, passphrase);
    return { path, mode, matches: cert ? keyMatches(key, cert.publicKey) : undefined };
  } catch (e) {
    return { path, mode, error: errorMessage(e) };
  }
}

function readCluster(state: CaState, name: string, registered: boolean, passphrase?: string): ClusterSnapshot {
  const dir = state.clusterDir(name);
  const c: ClusterSnapshot = { name, dir, registered, chain: [], roots: [] };
  if (!existsSync(join(dir, 'ca-cert.pem'))) return c;
  const file = (n: string) => join(dir, n);
  try {
    c.caCert = parseCertificate(readFileSync(file('ca-cert.pem'), 'utf8'), file('ca-cert.pem'));
    c.chain = existsSync(file('cert-chain.pem'))
      ? parseCertificates(readFileSync(file('cert-chain.pem'), 'utf8'), file('cert-chain.pem'))
      : [];
    if (!existsSync(file('root-cert.pem'))) throw new Error(`${file('root-cert.pem')} is missing`);
    c.roots = parseCertificates(readFileSync(file('root-cert.pem'), 'utf8'), file('root-cert.pem'));
  } catch (e) {
    c.readError = errorMessage(e);
  }
  if (existsSync(file('ca-key.pem'))) c.key = readKeyFile(file('ca-key.pem'), c.caCert, passphrase);
  else c.readError ??= `${file('ca-key.pem')} is missing`;
  return c;
}

function readCertificate(cert: Certificate, secrets: FileSecretSink, passphrase?: string): CertificateSnapshot {
  const ns = cert.metadata.namespace ?? 'default';
  const secretDir = secrets.dataDir({ namespace: ns, name: cert.spec.secretName });
  const spec = { renewBefore: cert.spec.renewBefore, renewBeforePercentage: cert.spec.renewBeforePercentage };
  const c: CertificateSnapshot = { name: `${ns}/${cert.metadata.name}`, secretDir, spec, chain: [], cas: [] };
  const file = (n: string) => join(secretDir, n);
  if (!existsSync(file('tls.crt'))) {
    c.readError = `its Secret ${ns}/${cert.spec.secretName} has no tls.crt (${file('tls.crt')})`;
    return c;
  }
  try {
    c.chain = parseCertificates(readFileSync(file('tls.crt'), 'utf8'), file('tls.crt'));
    const ca = existsSync(file('ca.crt')) ? readFileSync(file('ca.crt'), 'utf8') : '';
    c.cas = ca.trim() ? parseCertificates(ca, file('ca.crt')) : [];
  } catch (e) {
    c.readError = errorMessage(e);
  }
  if (existsSync(file('tls.key'))) c.key = readKeyFile(file('tls.key'), c.chain[0], passphrase);
  else c.readError ??= `${file('tls.key')} is missing`;
  return c;
}

async function ownership(c: ClusterSnapshot, secrets: FileSecretSink, store: FileResourceStore): Promise<void> {
  const meta = await secrets.get({ cluster: c.name, ...CACERTS }).catch(() => undefined);
  c.owner = meta?.annotations?.[OWNER_ANNOTATION];
  const m = /^RootTrustPolicy\/([^/]+)\/([^/]+)$/.exec(c.owner ?? '');
  if (!m) return;
  const rtp = await store.get<RootTrustPolicy>(ROOT_TRUST_POLICY, m[2], m[1]);
  if (rtp) {
    c.policyRatio = rtp.spec.config?.intermediateCertOptions?.secretRotationGracePeriodRatio ?? RTP_DEFAULTS.secretRotationGracePeriodRatio;
  }
}

async function readDatabase(dir: string): Promise<StateSnapshot['database']> {
  const path = join(dir, DB_FILE_NAME);
  if (!existsSync(path)) return undefined;
  const latest = Math.max(...MIGRATIONS.map((m) => m.version));
  const db = { path, mode: statSync(path).mode & 0o777, latest };
  try {
    // Read-only: the doctor must not migrate or otherwise change what it examines.
    const { default: Database } = await import('better-sqlite3');
    const conn = new Database(path, { readonly: true, fileMustExist: true, timeout: 5000 });
    try {
      const check = conn.pragma('quick_check', { simple: true });
      if (check !== 'ok') return { ...db, error: `integrity check: ${String(check)}` };
      const row = conn.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
      return { ...db, schema: row.v ?? 0 };
    } finally {
      conn.close();
    }
  } catch (e) {
    return { ...db, error: errorMessage(e) };
  }
}

/** Everything `meshca doctor --dir` judges, read without changing anything. */
export async function readStateSnapshot(dir: string, passphrase?: string): Promise<StateSnapshot> {
  const state = new CaState(dir, { passphrase });
  const store = new FileResourceStore(state.dir);
  const secrets = new FileSecretSink(state.dir);
  const snap: StateSnapshot = { dir: state.dir, rootPath: state.rootCertPath, clusters: [], failed: [] };
  if (state.hasRoot()) {
    try {
      snap.root = parseCertificate(readFileSync(state.rootCertPath, 'utf8'), state.rootCertPath);
    } catch (e) {
      snap.rootError = errorMessage(e);
    }
    if (existsSync(state.rootKeyPath)) snap.rootKey = readKeyFile(state.rootKeyPath, snap.root, passphrase);
  }
  let registered: string[] = [];
  try {
    registered = (await store.list<Resource>(CLUSTER)).map((c) => c.metadata.name);
    snap.failed = await failedResources(store);
    const certs = await store.list<Certificate>(CERTIFICATE);
    snap.certificates = certs.map((c) => readCertificate(c, secrets, passphrase));
  } catch (e) {
    snap.resourcesError = errorMessage(e);
  }
  const names = [...new Set([...state.listClusters(), ...registered])].sort();
  for (const name of names) {
    const c = readCluster(state, name, registered.includes(name), passphrase);
    await ownership(c, secrets, store).catch(() => undefined);
    snap.clusters.push(c);
  }
  const bundle = trustBundlePath(state.dir);
  if (existsSync(bundle)) {
    try {
      snap.trustBundle = { path: bundle, roots: parseCertificates(readFileSync(bundle, 'utf8'), bundle) };
    } catch (e) {
      snap.trustBundle = { path: bundle, roots: [], error: errorMessage(e) };
    }
  }
  snap.database = await readDatabase(state.dir);
  snap.serveRenewBefore = serveRenewBefore(state.dir);
  return snap;
}
