import { Registry } from 'prom-client';
import { LocalTokenIssuer } from '../../auth/index.js';
import { intermediateTtlOf, upstreamBlock } from '../../config/upstream.js';
import { newReplicaId } from '../../leader/sole.js';
import { invalid } from '../../pki/errors.js';
import type { Store } from '../../store/index.js';
import type { PgStore } from '../../store/postgres/index.js';
import { runIntermediateRenewal } from '../material-renewal.js';
import { bootstrapReplicated, type MaterialOptions, type ReplicatedBootstrap, type VersionedBundle } from '../material-store.js';
import { bootstrapFromUpstream, mintFromUpstream } from '../material-upstream.js';
import { createUpstream, isResumable, type ResumableIssuer, type Upstream } from '../../upstream/index.js';
import { followGenerations } from './generations.js';
import { heldSource } from './holder.js';
import { RenewalMetrics } from './renewal-metrics.js';
import { replicaElection } from './replica-election.js';
import type { MaterialDeps, MaterialSource } from './source.js';

/**
 * Several `meshca serve` replicas on one PostgreSQL database. Every replica serves gRPC with the
 * CA material it reads from the database; one leader, chosen by an advisory lock, runs the
 * controllers (the intermediate renewal here, and whatever is plugged into onLeader). The pieces:
 * bootstrap under a lock (ca/material-store.ts), renewal under the leader fence and followers woken
 * by NOTIFY (ca/material-renewal.ts), the elector (leader/pg-advisory.ts). With `upstream: awspca`
 * the intermediates come from AWS PCA instead of a root in the database (ca/material-upstream.ts).
 */

/** An upstream the replicas can share: one whose half-done requests another replica can finish. */
export async function replicatedUpstream(d: MaterialDeps): Promise<Upstream & ResumableIssuer> {
  const { config } = d;
  const u = await createUpstream(upstreamBlock(config), {
    stateDir: config.dir,
    passphrase: d.passphrase,
    now: d.now,
    warn: (m) => d.log.warn({}, m),
  });
  if (!isResumable(u)) {
    u.close?.();
    throw invalid(
      'unsupported_combination',
      `store: postgres takes the cluster intermediate from the root in the database (upstream: local) or from AWS Private CA (upstream: awspca, in intermediate or RA mode), or sign nothing themselves (upstream: k8s-csr); upstream: ${config.upstream} with replicas is not supported yet`,
    );
  }
  return u;
}

function upstreamBoot(b: VersionedBundle & { created: boolean }): ReplicatedBootstrap {
  return { ...b, root: { cert: b.bundle.roots[0] }, createdRoot: false, createdIntermediate: b.created };
}

/** The replicated CA's settings from the serve configuration, for replica `id`. */
export function materialOptions(
  d: Pick<MaterialDeps, 'config' | 'passphrase' | 'progress'>,
  id: string,
): MaterialOptions & { renewBeforeSeconds?: number } {
  const { config } = d;
  return {
    cluster: config.cluster,
    trustDomain: config.trustDomain,
    keyAlgorithm: config.keyAlgorithm,
    rootDays: config.rootDays,
    intermediateTtlSeconds: intermediateTtlOf(config),
    renewBeforeSeconds: config.renewBefore,
    passphrase: d.passphrase,
    progress: d.progress,
    replica: id,
  };
}

export function isReplicated(store: Store): store is PgStore {
  return (store as Partial<PgStore>).replicated === true;
}

/**
 * The PostgreSQL store's CA: bootstrap (or load) the material from the database, follow newer
 * generations, and elect a leader that renews (never in a worker, whose primary competes).
 */
export async function openReplicatedSource(d: MaterialDeps, o: { elect: boolean }): Promise<MaterialSource> {
  const { config, log, now } = d;
  if (!isReplicated(d.store)) throw invalid('bad_store', 'openReplicatedSource needs the PostgreSQL store');
  const db = d.store;
  const id = newReplicaId();
  const opts = materialOptions(d, id);
  const upstream = config.upstream === 'local' ? undefined : await replicatedUpstream(d);
  const mintDeps = upstream && { upstream, options: opts, now, log, pauseAfterRequestMs: d.renewalPauseMs };
  const boot = mintDeps ? upstreamBoot(await bootstrapFromUpstream(db, mintDeps)) : await bootstrapReplicated(db, opts, now);
  // The local token issuer's first key is created under the same lock, so replicas starting
  // together share one key instead of each minting its own.
  await db.withBootstrapLock(async () => void (await LocalTokenIssuer.open(db, { passphrase: d.passphrase })));
  if (boot.createdRoot) log.info({ fingerprint: boot.root.cert.fingerprint256, store: 'postgres' }, 'created a new root in the database');
  if (boot.createdIntermediate)
    log.info({ cluster: config.cluster, store: 'postgres' }, 'created the cluster intermediate in the database');

  const g = await followGenerations(db, d, boot);
  const metrics = new Registry();
  const renewal = new RenewalMetrics([metrics], config.cluster, g.renewFrom);
  const follower = g.follower;

  const { advisory, elector, lead } = await replicaElection(db, d, id, o.elect);
  lead.onLeader((signal) => {
    // A previous leader may have committed a generation this replica has not loaded yet.
    void follower.check().then(() =>
      runIntermediateRenewal(
        {
          db,
          options: opts,
          now,
          fence: () => advisory?.fence(),
          log,
          onCommitted: g.committed,
          pauseBeforeCommitMs: mintDeps ? undefined : d.renewalPauseMs,
          mint: mintDeps && ((g, sig) => mintFromUpstream({ ...mintDeps, db, fence: () => advisory?.fence() }, g, sig)),
          onFailed: () => renewal.failed(),
        },
        signal,
      ),
    );
  });
  await elector.start();

  return heldSource(g.holder, {
    describe: () => g.describe('database'),
    metrics,
    createdIntermediate: boot.createdIntermediate,
    createdRoot: boot.createdRoot,
    leadership: lead,
    reload: () => void follower.check(),
    // Returns the promise (startServer's cleanup awaits it). Leadership goes first, so that the
    // lock is released at once for a follower and no renewal starts while the store closes.
    close: () =>
      lead
        .stop()
        .finally(() => follower.stop())
        .finally(() => upstream?.close?.()),
  });
}
