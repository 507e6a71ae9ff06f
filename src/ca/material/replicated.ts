import { Registry } from 'prom-client';
import { LocalTokenIssuer } from '../../auth/index.js';
import { intermediateTtlOf } from '../../config/upstream.js';
import { NeverLeader, leadershipOf, newReplicaId } from '../../leader/sole.js';
import type { PgAdvisoryElector } from '../../leader/pg-advisory.js';
import { parseCertificate } from '../../pki/certificate.js';
import { errorMessage, invalid } from '../../pki/errors.js';
import type { Store } from '../../store/index.js';
import type { PgStore } from '../../store/postgres/index.js';
import { MaterialFollower, runIntermediateRenewal } from '../material-renewal.js';
import { bootstrapReplicated, renewalDueAt, type MaterialOptions, type VersionedBundle } from '../material-store.js';
import { signerFromBundle } from '../state.js';
import { MaterialHolder, heldSource } from './holder.js';
import { RenewalMetrics } from './renewal-metrics.js';
import type { MaterialDeps, MaterialSource } from './source.js';

/**
 * Several `meshca serve` replicas on one PostgreSQL database. Every replica serves gRPC with the
 * CA material it reads from the database; one leader, chosen by an advisory lock, runs the
 * controllers (the intermediate renewal here, and whatever is plugged into onLeader). The pieces:
 * bootstrap under a lock (ca/material-store.ts), renewal under the leader fence and followers woken
 * by NOTIFY (ca/material-renewal.ts), the elector (leader/pg-advisory.ts).
 */

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
  if (config.upstream !== 'local') {
    throw invalid(
      'unsupported_combination',
      `store: postgres keeps the root in the database and signs intermediates with it (upstream: local); upstream: ${config.upstream} with replicas is not supported yet`,
    );
  }
  const id = newReplicaId();
  const ttl = intermediateTtlOf(config);
  const opts: MaterialOptions & { renewBeforeSeconds?: number } = {
    cluster: config.cluster,
    trustDomain: config.trustDomain,
    keyAlgorithm: config.keyAlgorithm,
    rootDays: config.rootDays,
    intermediateTtlSeconds: ttl,
    renewBeforeSeconds: config.renewBefore,
    passphrase: d.passphrase,
    replica: id,
  };
  // The leader's schedule (renewalDueAt) applied to the intermediate this replica signs with.
  const renewFrom = () => renewalDueAt(h.material.signer.cert, ttl, config.renewBefore);
  const metrics = new Registry();
  const renewal = new RenewalMetrics([metrics], config.cluster, renewFrom);
  const boot = await bootstrapReplicated(db, opts, now);
  // The local token issuer's first key is created under the same lock, so replicas starting
  // together share one key instead of each minting its own.
  await db.withBootstrapLock(async () => void (await LocalTokenIssuer.open(db, { passphrase: d.passphrase })));
  if (boot.createdRoot) log.info({ fingerprint: boot.root.cert.fingerprint256, store: 'postgres' }, 'created a new root in the database');
  if (boot.createdIntermediate)
    log.info({ cluster: config.cluster, store: 'postgres' }, 'created the cluster intermediate in the database');

  let generation = boot.generation;
  // Earlier intermediates still valid: their workload certificates may renew over mTLS here,
  // even on a replica that started after they were replaced.
  const previous = (await db.materialHistory('intermediate', config.cluster))
    .filter((r) => r.generation < boot.generation && r.notAfter.getTime() > now().getTime())
    .map((r) => parseCertificate(r.certPem));
  const h = new MaterialHolder({ signer: signerFromBundle(boot.bundle), roots: boot.bundle.roots }, { now, previous });
  const swap = (v: VersionedBundle): void => {
    if (v.generation <= generation) return;
    generation = v.generation;
    h.swap({ signer: signerFromBundle(v.bundle), roots: v.bundle.roots });
  };
  const follower = new MaterialFollower({ db, cluster: config.cluster, passphrase: d.passphrase, log, onNewer: swap }, generation);
  await follower.start();

  // pg is loaded only by deployments that use it: importing it costs memory every other process would pay.
  const advisory: PgAdvisoryElector | undefined = o.elect
    ? new (await import('../../leader/pg-advisory.js')).PgAdvisoryElector({ url: db.url, identity: id, log })
    : undefined;
  const elector = advisory ?? new NeverLeader();
  const lead = leadershipOf(elector, id, now);
  lead.onLeader((signal) => {
    void db.recordLeaderTerm(id, now()).then(
      (term) => log.info({ term, identity: id }, 'leading'),
      (e: unknown) => log.warn({ err: errorMessage(e) }, 'cannot record the leader term'),
    );
    // A previous leader may have committed a generation this replica has not loaded yet.
    void follower.check().then(() =>
      runIntermediateRenewal(
        {
          db,
          options: opts,
          now,
          fence: () => advisory?.fence(),
          log,
          onCommitted: (v) => {
            follower.note(v);
            swap(v);
          },
          pauseBeforeCommitMs: d.renewalPauseMs,
          onFailed: () => renewal.failed(),
        },
        signal,
      ),
    );
  });
  await elector.start();

  return heldSource(h, {
    describe: () => ({ origin: 'database', generation, nextRenewal: renewFrom() }),
    metrics,
    createdIntermediate: boot.createdIntermediate,
    createdRoot: boot.createdRoot,
    leadership: lead,
    reload: () => void follower.check(),
    // Returns the promise (startServer's cleanup awaits it). Leadership goes first, so that the
    // lock is released at once for a follower and no renewal starts while the store closes.
    close: () => lead.stop().finally(() => follower.stop()),
  });
}
