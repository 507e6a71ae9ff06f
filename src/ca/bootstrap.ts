import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { certLabel } from '../pki/certificate.js';
import { MeshcaError } from '../pki/errors.js';
import type { KeyAlgorithm } from '../pki/keys.js';
import { META, type Store } from '../store/index.js';
import type { CaBundle } from './bundle.js';
import type { CaState } from './state.js';

export interface BootstrapOptions {
  cluster: string;
  trustDomain: string;
  keyAlgorithm: KeyAlgorithm;
  rootDays: number;
  intermediateDays: number;
  now: Date;
}

export interface BootstrapResult {
  bundle: CaBundle;
  createdRoot: boolean;
  createdIntermediate: boolean;
  /** The root on disk is not the one the store recorded (replaced by `meshca root import --force`). */
  rootReplaced?: { recorded: string; found: string };
}

/**
 * First start creates a root and the cluster's intermediate; every later start loads them. A root
 * is minted only into a directory that has never had one: when the store remembers a root, or a
 * cluster bundle exists, a missing or unreadable root is an error and nothing is written.
 */
export async function bootstrapCa(state: CaState, store: Store, o: BootstrapOptions): Promise<BootstrapResult> {
  const recorded = await store.getMeta(META.rootFingerprint);
  let createdRoot = false;
  if (!state.hasRoot()) {
    const clusters = existsSync(join(state.dir, 'clusters')) ? state.listClusters() : [];
    if (recorded || clusters.length > 0) {
      throw new MeshcaError(
        'failed_precondition',
        'root_missing',
        `${state.rootCertPath} is missing but this state directory already had a root` +
          (recorded ? ` (SHA-256 ${recorded})` : ` (cluster bundles: ${clusters.join(', ')})`) +
          '; restore the root file. meshca will not mint a new root over an existing CA.',
      );
    }
    const root = state.initRoot({ alg: o.keyAlgorithm, subject: { organization: [o.trustDomain] }, days: o.rootDays, now: o.now });
    await store.setMeta(META.rootFingerprint, root.fingerprint256);
    await store.setMeta(META.rootCreatedAt, o.now.toISOString());
    createdRoot = true;
  }
  const root = state.loadRoot();
  let rootReplaced: BootstrapResult['rootReplaced'];
  if (!recorded) await store.setMeta(META.rootFingerprint, root.cert.fingerprint256);
  else if (recorded !== root.cert.fingerprint256) {
    rootReplaced = { recorded, found: root.cert.fingerprint256 };
    await store.setMeta(META.rootFingerprint, root.cert.fingerprint256);
  }

  let createdIntermediate = false;
  let bundle: CaBundle;
  if (!existsSync(join(state.clusterDir(o.cluster), 'ca-cert.pem'))) {
    bundle = state.createIntermediate(o.cluster, { alg: o.keyAlgorithm, days: o.intermediateDays, now: o.now });
    createdIntermediate = true;
  } else {
    bundle = state.loadCluster(o.cluster);
  }
  const top = bundle.chain[bundle.chain.length - 1];
  if (!bundle.roots.some((r) => r.der.equals(root.cert.der)) || !top?.der.equals(root.cert.der)) {
    throw new MeshcaError(
      'failed_precondition',
      'intermediate_mismatch',
      `the intermediate of cluster "${o.cluster}" (${certLabel(bundle.caCert)}) does not chain to the root ${certLabel(root.cert)} in ${state.rootCertPath}; recreate it with \`meshca intermediate --cluster ${o.cluster}\``,
    );
  }
  await store.setMeta(META.intermediatePrefix + o.cluster, bundle.caCert.fingerprint256);
  return { bundle, createdRoot, createdIntermediate, rootReplaced };
}
