import { createPublicKey } from 'node:crypto';
import { certsToPem, parseCertificate, parseCertificates } from '../pki/certificate.js';
import { MeshcaError } from '../pki/errors.js';
import { generateKeyPair, generateKeyPairAsync, keyMatches, type KeyAlgorithm } from '../pki/keys.js';
import { generatingKey, type Progress } from '../util/progress.js';
import { createIntermediateCertificate, createRootCertificate } from '../pki/profiles.js';
import type { AdvisoryFence, CaMaterialRow, CaMaterialRows } from '../store/ca-material.js';
import { META, type Store } from '../store/index.js';
import { keyPem, type CaBundle } from './bundle.js';
import { decryptKey } from './stored-key.js';
import type { RootMaterial } from './state.js';

export { decryptKey } from './stored-key.js';

/**
 * CA material in the database instead of the state directory, for replicas that share a
 * PostgreSQL store and nothing else. The root and each cluster's intermediate are rows of
 * ca_material (keys encrypted with the key passphrase when one is set); a renewal commits the
 * next generation. Minting is separated from committing so that the caller decides under which
 * fence a commit happens, and nothing is ever signed with material that is not committed.
 */

const DAY = 86_400;

export interface MaterialOptions {
  cluster: string;
  trustDomain: string;
  keyAlgorithm: KeyAlgorithm;
  rootDays: number;
  /** Lifetime of each intermediate. */
  intermediateTtlSeconds: number;
  passphrase?: string;
  /** Told about slow key generations (RSA-3072/4096). */
  progress?: Progress;
  /** The replica committing, recorded in created_by. */
  replica: string;
}

export type MaterialDb = CaMaterialRows & Store;

/** What a renewal reads and writes: the rows of the intermediates, and the served fingerprint. */
export type RenewalDb = Pick<CaMaterialRows, 'latestMaterial' | 'commitMaterial'> & Pick<Store, 'setMeta'>;

export interface VersionedBundle {
  bundle: CaBundle;
  generation: number;
}

export function rootFromRow(row: CaMaterialRow, passphrase?: string): RootMaterial {
  const cert = parseCertificate(row.certPem, `root generation ${row.generation} in the database`);
  const key = row.keyPem ? decryptKey(row.keyPem, `root key generation ${row.generation}`, passphrase) : undefined;
  if (key && !keyMatches(key, cert.publicKey))
    throw new MeshcaError(
      'failed_precondition',
      'corrupt_state',
      `the root key in the database does not match root generation ${row.generation}`,
    );
  return { cert, key };
}

export function bundleFromRow(row: CaMaterialRow, passphrase?: string): CaBundle {
  const what = `intermediate of cluster "${row.cluster}" generation ${row.generation} in the database`;
  const caCert = parseCertificate(row.certPem, what);
  if (!row.keyPem) throw new MeshcaError('failed_precondition', 'corrupt_state', `${what} has no key`);
  const caKey = decryptKey(row.keyPem, `${what} key`, passphrase);
  if (!keyMatches(caKey, caCert.publicKey))
    throw new MeshcaError('failed_precondition', 'corrupt_state', `the key of the ${what} does not match its certificate`);
  return {
    caCert,
    caKey,
    chain: parseCertificates(row.chainPem, `${what} chain`),
    roots: parseCertificates(row.rootsPem, `${what} roots`),
  };
}

function row(
  kind: CaMaterialRow['kind'],
  cluster: string,
  generation: number,
  b: CaBundle,
  o: { passphrase?: string; replica: string; now: Date },
): CaMaterialRow {
  return {
    kind,
    cluster,
    generation,
    certPem: b.caCert.pem,
    keyPem: keyPem(b.caKey, o.passphrase),
    chainPem: certsToPem(b.chain),
    rootsPem: certsToPem(b.roots),
    fingerprint256: b.caCert.fingerprint256,
    serial: b.caCert.serialHex,
    notBefore: b.caCert.notBefore,
    notAfter: b.caCert.notAfter,
    createdAt: o.now,
    createdBy: o.replica,
  };
}

/** A new intermediate for `cluster` signed by the root; not committed anywhere yet. */
export async function mintIntermediate(
  root: RootMaterial,
  o: Pick<MaterialOptions, 'cluster' | 'trustDomain' | 'keyAlgorithm' | 'intermediateTtlSeconds' | 'progress'>,
  now: Date,
): Promise<CaBundle> {
  if (!root.key) {
    throw new MeshcaError(
      'failed_precondition',
      'no_root_key',
      "the root in the database has no key; intermediates must come from the root's owner (or an upstream CA)",
    );
  }
  const what = `the intermediate of cluster "${o.cluster}"`;
  const key = (await generatingKey(o.progress, o.keyAlgorithm, what, () => generateKeyPairAsync(o.keyAlgorithm))).privateKey;
  const { cert } = createIntermediateCertificate({
    issuerCert: root.cert,
    issuerKey: root.key,
    publicKey: createPublicKey(key),
    subject: { organization: [o.trustDomain], commonName: `meshca intermediate ${o.cluster}` },
    days: o.intermediateTtlSeconds / DAY,
    now,
  });
  return { caCert: cert, caKey: key, chain: [cert, root.cert], roots: [root.cert] };
}

export interface ReplicatedBootstrap extends VersionedBundle {
  root: RootMaterial;
  createdRoot: boolean;
  createdIntermediate: boolean;
}

/**
 * First start of the first replica creates the root and the cluster's intermediate in the
 * database; every other start (of any replica) loads them. Runs under the bootstrap lock, and each
 * row is committed as generation 1 with the primary key as a second fence, so replicas starting
 * together end up with one root.
 */
export async function bootstrapReplicated(db: MaterialDb, o: MaterialOptions, now: () => Date): Promise<ReplicatedBootstrap> {
  return db.withBootstrapLock(async () => {
    let createdRoot = false;
    let rootRow = await db.latestMaterial('root', '');
    if (!rootRow) {
      const kp = generatingKey(o.progress, o.keyAlgorithm, 'the root', () => generateKeyPair(o.keyAlgorithm));
      const cert = createRootCertificate({ key: kp.privateKey, subject: { organization: [o.trustDomain] }, days: o.rootDays, now: now() });
      const candidate = row('root', '', 1, { caCert: cert, caKey: kp.privateKey, chain: [cert], roots: [cert] }, { ...o, now: now() });
      createdRoot = await db.commitMaterial(candidate);
      rootRow = await db.latestMaterial('root', '');
      if (!rootRow) throw new MeshcaError('internal', 'root_missing', 'the root committed to the database cannot be read back');
      if (createdRoot) {
        await db.setMeta(META.rootFingerprint, rootRow.fingerprint256);
        await db.setMeta(META.rootCreatedAt, now().toISOString());
      }
    }
    const root = rootFromRow(rootRow, o.passphrase);
    let createdIntermediate = false;
    let interRow = await db.latestMaterial('intermediate', o.cluster);
    if (!interRow) {
      const b = await mintIntermediate(root, o, now());
      createdIntermediate = await db.commitMaterial(row('intermediate', o.cluster, 1, b, { ...o, now: now() }));
      interRow = await db.latestMaterial('intermediate', o.cluster);
      if (!interRow)
        throw new MeshcaError('internal', 'intermediate_missing', 'the intermediate committed to the database cannot be read back');
    }
    const bundle = bundleFromRow(interRow, o.passphrase);
    await db.setMeta(META.intermediatePrefix + o.cluster, bundle.caCert.fingerprint256);
    return { bundle, generation: interRow.generation, root, createdRoot, createdIntermediate };
  });
}

/** The newest committed intermediate of a cluster. */
export async function loadIntermediate(db: MaterialDb, cluster: string, passphrase?: string): Promise<VersionedBundle | undefined> {
  const r = await db.latestMaterial('intermediate', cluster);
  return r ? { bundle: bundleFromRow(r, passphrase), generation: r.generation } : undefined;
}

/**
 * Commits `bundle` as the generation after `previous`. False: that generation exists (another
 * replica renewed first); the caller re-reads rather than signing with what it minted.
 */
export async function commitIntermediate(
  db: RenewalDb,
  bundle: CaBundle,
  previous: number,
  o: Pick<MaterialOptions, 'cluster' | 'passphrase' | 'replica'>,
  now: Date,
  fence?: AdvisoryFence,
): Promise<boolean> {
  const ok = await db.commitMaterial(row('intermediate', o.cluster, previous + 1, bundle, { ...o, now }), fence);
  if (ok) await db.setMeta(META.intermediatePrefix + o.cluster, bundle.caCert.fingerprint256);
  return ok;
}

/** When an intermediate is due for renewal: `renewBefore` ahead of NotAfter (default a third of the TTL, as cert-manager). */
export function renewalDueAt(cert: { notAfter: Date }, ttlSeconds: number, renewBeforeSeconds?: number): Date {
  let before = renewBeforeSeconds ?? ttlSeconds / 3;
  if (before >= ttlSeconds) before = ttlSeconds / 3;
  return new Date(cert.notAfter.getTime() - before * 1000);
}
