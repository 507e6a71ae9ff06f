import { bootstrapCa } from '../bootstrap.js';
import { ClusterBundleReload } from './bundle-reload.js';
import { heldSource } from './holder.js';
import type { MaterialDeps, MaterialSource } from './source.js';

/**
 * The local CA: root and cluster intermediate in the state directory (created at the first
 * start), reloaded without a restart whenever the cluster bundle is rewritten.
 */
export async function openLocalSource(d: MaterialDeps, o: { watchMarker: boolean }): Promise<MaterialSource> {
  const { config, log } = d;
  const boot = await bootstrapCa(d.state, d.store, {
    cluster: config.cluster,
    trustDomain: config.trustDomain,
    keyAlgorithm: config.keyAlgorithm,
    rootDays: config.rootDays,
    intermediateDays: config.intermediateDays,
    now: d.now(),
  });
  if (boot.createdRoot) log.info({ fingerprint: boot.bundle.roots[0].fingerprint256, dir: config.dir }, 'created a new root');
  if (boot.createdIntermediate) log.info({ cluster: config.cluster }, 'created the cluster intermediate');
  if (boot.rootReplaced) log.warn(boot.rootReplaced, 'the root differs from the one recorded at the last start (replaced by an import?)');
  const reload = new ClusterBundleReload({
    state: d.state,
    cluster: config.cluster,
    initial: boot.bundle,
    now: d.now,
    log,
    watchMarker: o.watchMarker,
  });
  return heldSource(reload.holder, {
    describe: () => ({ origin: 'state-dir' }),
    createdRoot: boot.createdRoot,
    createdIntermediate: boot.createdIntermediate,
    reload: () => void reload.check(),
    bundleWritten: () => void reload.check(),
    close: () => reload.close(),
  });
}
