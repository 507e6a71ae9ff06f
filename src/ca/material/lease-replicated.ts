import { Registry } from 'prom-client';
import { KubeClient } from '../../k8s/client.js';
import { SecretMaterialRows } from '../../k8s/material-secret.js';
import { leaseElection, ownNamespace } from '../../k8s/serve.js';
import { NeverLeader, leadershipOf, newReplicaId } from '../../leader/sole.js';
import { MeshcaError } from '../../pki/errors.js';
import { sleep } from '../../util/sleep.js';
import { runIntermediateRenewal } from '../material-renewal.js';
import { bundleFromRow, type VersionedBundle } from '../material-store.js';
import { mintFromUpstream } from '../material-upstream.js';
import { followGenerations } from './generations.js';
import { heldSource } from './holder.js';
import { RenewalMetrics } from './renewal-metrics.js';
import { materialOptions, replicatedUpstream } from './replicated.js';
import type { MaterialDeps, MaterialSource } from './source.js';

/** How long a replica waits at start for the leader to put the first intermediate in the Secret. */
const FIRST_WAIT_MS = 120_000;

/**
 * Replicas in Kubernetes without a database (`stateBackend: secret`, `leaderElection`) with
 * `upstream: awspca`: the same shape as on PostgreSQL, with the Lease for the advisory lock and
 * the state Secret for the tables. The Lease holder alone asks PCA for each intermediate (the
 * first one included), writes the request before asking and the ARN once answered, and commits
 * the result as the next generation in the Secret; every replica polls the Secret and switches.
 */
export async function openLeaseReplicatedSource(d: MaterialDeps, o: { elect: boolean }): Promise<MaterialSource> {
  const { config, log, now } = d;
  const client = await KubeClient.load({ kubeconfig: config.kubeconfig });
  const id = config.podName ?? newReplicaId();
  const election = o.elect ? leaseElection(config, { log, now }, client) : undefined;
  const leading = () => election?.elector.isLeader() ?? false;
  const rows = new SecretMaterialRows(client, { namespace: ownNamespace(config, client), name: config.stateSecret }, leading, d.store);
  const opts = materialOptions(d, id);
  const upstream = await replicatedUpstream(d);
  const lead = election?.leadership ?? leadershipOf(new NeverLeader(), id, now);
  let committed: ((v: VersionedBundle) => void) | undefined;
  let renewFrom: (() => Date) | undefined;
  const metrics = new Registry();
  const renewal = new RenewalMetrics([metrics], config.cluster, () => renewFrom?.());
  lead.onLeader((signal) => {
    void runIntermediateRenewal(
      {
        db: rows,
        options: opts,
        now,
        fence: () => undefined,
        leading,
        log,
        onCommitted: (v) => committed?.(v),
        onFailed: () => renewal.failed(),
        mint: (g, sig) => mintFromUpstream({ db: rows, upstream, options: opts, now, log, pauseAfterRequestMs: d.renewalPauseMs }, g, sig),
      },
      signal,
    );
  });
  try {
    await election?.elector.start();
    // The first generation comes from whichever replica leads; every replica waits for it.
    const deadline = Date.now() + FIRST_WAIT_MS;
    let row = await rows.latestMaterial('intermediate', config.cluster);
    while (!row) {
      if (Date.now() > deadline) {
        throw new MeshcaError(
          'unavailable',
          'no_intermediate',
          `no intermediate for cluster "${config.cluster}" in ${rows.description} after ${FIRST_WAIT_MS / 1000} s; is a replica leading?`,
        );
      }
      await sleep(200);
      row = await rows.latestMaterial('intermediate', config.cluster);
    }
    const boot = { bundle: bundleFromRow(row, d.passphrase), generation: row.generation };
    const g = await followGenerations(rows, d, boot);
    committed = g.committed;
    renewFrom = g.renewFrom;
    return heldSource(g.holder, {
      describe: () => g.describe('upstream'),
      metrics,
      createdIntermediate: false,
      createdRoot: false,
      leadership: lead,
      reload: () => void g.follower.check(),
      close: () =>
        lead
          .stop()
          .finally(() => g.follower.stop())
          .finally(() => upstream.close?.()),
    });
  } catch (e) {
    await lead.stop();
    upstream.close?.();
    throw e;
  }
}
