import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { certLabel, type ParsedCertificate } from '../pki/certificate.js';
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

/** The certificate in `roots` that `top` is, or that signed it (a chain ending below its root). */
function anchorOf(top: ParsedCertificate, roots: ParsedCertificate[]): ParsedCertificate | undefined {
  return roots.find((r) => r.der.equals(top.der)) ?? roots.find((r) => top.issuerDer.equals(r.subjectDer) && signedBy(top, r));
}

function signedBy(child: ParsedCertificate, issuer: ParsedCertificate): boolean {
  try {
    return child.node.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/**
 * The cluster bundle must hang together: ca-cert.pem first in cert-chain.pem, each link signed by
 * the next, and the top one of the roots in root-cert.pem (or signed by one). Which root that is
 * does not matter: a RootTrustPolicy with `secretRef` signs with an external root, and mid-rotation
 * the intermediate already sits on the new root while the state root is still the old one; both
 * roots are then in root-cert.pem. Validity is not checked here: an expired intermediate is
 * reported by readiness, not by refusing to start.
 */
export function bundleChainProblem(b: CaBundle): string | undefined {
  const chain = b.chain[0]?.der.equals(b.caCert.der) ? b.chain : [b.caCert, ...b.chain];
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!chain[i].issuerDer.equals(chain[i + 1].subjectDer) || !signedBy(chain[i], chain[i + 1])) {
      return `${certLabel(chain[i])} is not signed by the next certificate in cert-chain.pem, ${certLabel(chain[i + 1])}`;
    }
  }
  if (b.roots.length === 0) return 'root-cert.pem holds no root';
  if (!anchorOf(chain[chain.length - 1], b.roots)) {
    return `cert-chain.pem ends at ${certLabel(chain[chain.length - 1])}, which is none of the roots in root-cert.pem (${b.roots.map(certLabel).join(', ')})`;
  }
  return undefined;
}

function mismatch(state: CaState, cluster: string, b: CaBundle, why: string): MeshcaError {
  return new MeshcaError(
    'failed_precondition',
    'intermediate_mismatch',
    `the intermediate of cluster "${cluster}" (${certLabel(b.caCert)}) in ${state.clusterDir(cluster)} does not chain to a root it trusts: ${why}; recreate it with \`meshca intermediate --cluster ${cluster}\``,
  );
}

/**
 * First start creates a root and the cluster's intermediate; every later start loads them. A root
 * is minted only into a directory that has never had one: when the store remembers a root, or a
 * cluster bundle exists, a missing or unreadable root is an error and nothing is written. The one
 * exception is a directory that never had a meshca root (none recorded) whose cluster bundle was
 * written by a RootTrustPolicy with an external CA: that bundle is served as it is.
 */
export async function bootstrapCa(state: CaState, store: Store, o: BootstrapOptions): Promise<BootstrapResult> {
  const recorded = await store.getMeta(META.rootFingerprint);
  let createdRoot = false;
  if (!state.hasRoot()) {
    const clusters = existsSync(join(state.dir, 'clusters')) ? state.listClusters() : [];
    if (!recorded && state.hasCluster(o.cluster)) return externalBundle(state, store, o);
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
  const why = bundleChainProblem(bundle);
  if (why) throw mismatch(state, o.cluster, bundle, why);
  await store.setMeta(META.intermediatePrefix + o.cluster, bundle.caCert.fingerprint256);
  return { bundle, createdRoot, createdIntermediate, rootReplaced };
}

/** A cluster bundle under a root meshca does not hold (RootTrustPolicy secretRef): no root is recorded or minted. */
async function externalBundle(state: CaState, store: Store, o: BootstrapOptions): Promise<BootstrapResult> {
  const bundle = state.loadCluster(o.cluster);
  const why = bundleChainProblem(bundle);
  if (why) throw mismatch(state, o.cluster, bundle, why);
  await store.setMeta(META.intermediatePrefix + o.cluster, bundle.caCert.fingerprint256);
  return { bundle, createdRoot: false, createdIntermediate: false };
}
