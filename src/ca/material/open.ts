import { isRaMode } from '../../config/k8s.js';
import { prepareKubernetesState } from '../../k8s/serve.js';
import type { ServerRole } from '../../server/role.js';
import { openIssuerSecretSource } from './issuer-secret.js';
import { openLocalSource } from './local.js';
import { isReplicated, openReplicatedSource } from './replicated.js';
import { openReplicatedRaSource } from './replicated-ra.js';
import { openLeaseReplicatedSource } from './lease-replicated.js';
import type { MaterialDeps, MaterialSource } from './source.js';
import { openUpstreamSource, openUpstreamWorkerSource } from './upstream.js';

/**
 * The one place that decides what signs: the replicated CA (PostgreSQL; or a state Secret and a
 * Lease with an upstream), PostgreSQL replicas in RA mode, a cert-manager
 * Secret (issuerSecret), an upstream CA (a worker reads what its primary persisted), or the local
 * bundle in the state directory.
 */
export async function openMaterialSource(role: ServerRole, d: MaterialDeps): Promise<MaterialSource> {
  const worker = role === 'worker';
  // stateBackend secret with an upstream: the Secret holds generations of intermediates the Lease holder obtains.
  if (d.config.stateBackend === 'secret' && d.config.upstream !== 'local') return openLeaseReplicatedSource(d, { elect: !worker });
  // stateBackend secret: the state directory is filled from a Kubernetes Secret first.
  if (!worker) await prepareKubernetesState(d.config, d);
  if (isReplicated(d.store) && isRaMode(d.config)) return openReplicatedRaSource(d, { elect: !worker });
  if (isReplicated(d.store)) return openReplicatedSource(d, { elect: !worker });
  // The config allows issuerSecret only with the local upstream and SQLite.
  if (d.config.issuerSecret) return openIssuerSecretSource(d, { watchMarker: !worker });
  if (d.config.upstream !== 'local') return worker ? openUpstreamWorkerSource(d) : openUpstreamSource(d);
  // Workers reload only when the primary says so; the primary and a single process watch the files.
  return openLocalSource(d, { watchMarker: !worker });
}
