import { join } from 'node:path';
import { CaState } from '../ca/state.js';
import { FileResourceStore } from '../resources/file-store.js';
import { FileSecretSink } from '../resources/file-secrets.js';
import { awsPcaUpstreamFor } from './issuers/awspca-factory.js';
import { acquireLock } from './lock.js';
import type { Progress } from '../util/progress.js';
import type { Controllers } from './reconcile.js';

/**
 * The embedded (single state directory) wiring: resources and secrets as files under the state
 * directory, meshca's own hierarchy from CaState, the real AWS PCA upstream, and a lock file.
 * Another wiring supplies another ResourceStore and SecretSink (such as k8s/secret-sink.ts), nothing else.
 */
export function embeddedControllers(
  dir: string,
  o: { passphrase?: string; progress?: Progress } = {},
): Controllers & { store: FileResourceStore; secrets: FileSecretSink; lock: () => Promise<() => void> } {
  const state = new CaState(dir, { passphrase: o.passphrase, progress: o.progress });
  return {
    store: new FileResourceStore(state.dir),
    secrets: new FileSecretSink(state.dir),
    state,
    upstreams: awsPcaUpstreamFor,
    progress: o.progress,
    lock: () => acquireLock(join(state.dir, 'resources', '.reconcile.lock')),
  };
}
