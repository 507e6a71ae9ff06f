import type { X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { LocalTokenIssuer } from '../auth/index.js';
import { Authority, type SigningMaterial } from '../ca/authority.js';
import { MaterialFollower, runIntermediateRenewal } from '../ca/material-renewal.js';
import { bootstrapReplicated, type MaterialOptions, type VersionedBundle } from '../ca/material-store.js';
import { signerFromBundle } from '../ca/state.js';
import type { ServeConfig } from '../config/index.js';
import { intermediateTtlOf } from '../config/upstream.js';
import { SoleLeader, type LeaderElector, type Leadership } from '../leader/index.js';
import type { PgAdvisoryElector } from '../leader/pg-advisory.js';
import { parseCertificate, type ParsedCertificate } from '../pki/certificate.js';
import { errorMessage, invalid } from '../pki/errors.js';
import type { Store } from '../store/index.js';
import type { PgStore } from '../store/postgres/index.js';
import type { ServerRole } from './index.js';
import type { WiredUpstream } from './upstream-wiring.js';

/**
 * Several `meshca serve` replicas on one PostgreSQL database (issue 8). Every replica serves gRPC
 * with the CA material it reads from the database; one leader, chosen by an advisory lock, runs the
 * controllers (the intermediate renewal here, and whatever is plugged into onLeader). The pieces:
 * bootstrap under a lock (ca/material-store.ts), renewal under the leader fence and followers woken
 * by NOTIFY (ca/material-renewal.ts), the elector (leader/pg-advisory.ts).
 */

let servers = 0;

/**
 * Who this replica is, in logs, leader_terms and the dashboard: host/pid, with a suffix for the
 * second and later servers of one process (tests run several side by side).
 */
export function newReplicaId(): string {
  servers++;
  return `${hostname()}/${process.pid}${servers > 1 ? `#${servers}` : ''}`;
}

/** Fault injection for the HA test: pause between minting and committing a renewed intermediate. */
const FAILPOINT_PAUSE = 'MESHCA_FAILPOINT_RENEWAL_PAUSE_MS';

export type { Leadership };

/** Never leads: a worker process serves gRPC only; its primary competes for leadership. */
class NeverLeader implements LeaderElector {
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  isLeader(): boolean {
    return false;
  }
  onStartedLeading(): void {}
  onStoppedLeading(): void {}
}

function leadership(elector: LeaderElector, identity: string, now: () => Date): Leadership {
  let since: Date | undefined;
  elector.onStartedLeading(() => (since = now()));
  elector.onStoppedLeading(() => (since = undefined));
  return {
    identity,
    isLeader: () => elector.isLeader(),
    onLeader: (cb) => elector.onStartedLeading(cb),
    since: () => since,
    stop: () => elector.stop(),
  };
}

export interface HaDeps {
  config: ServeConfig;
  store: Store;
  log: Logger;
  now: () => Date;
  passphrase?: string;
  role: ServerRole;
}

export interface Replicated extends WiredUpstream {
  readonly createdRoot: boolean;
  readonly leadership: Leadership;
  /** Generation of the intermediate this replica signs with. */
  generation(): number;
  /** When the leader will renew the current intermediate. */
  nextRenewal(): Date;
}

export function isReplicated(store: Store): store is PgStore {
  return (store as Partial<PgStore>).replicated === true;
}

/** Leadership without an election (SQLite, no Lease): the single process (or the primary) leads; workers never do. */
export async function soleLeadership(role: ServerRole, now: () => Date): Promise<Leadership> {
  const id = newReplicaId();
  const elector = role === 'worker' ? new NeverLeader() : new SoleLeader(id);
  const l = leadership(elector, id, now);
  await elector.start();
  return l;
}

/**
 * The PostgreSQL store's CA: bootstrap (or load) the material from the database, follow newer
 * generations, and elect a leader that renews. Returned in the shape of an upstream wiring, so
 * that startServer swaps signers, metrics and the serving certificate the same way for both.
 */
export async function wireReplicated(d: HaDeps): Promise<Replicated> {
  const { config, log, now } = d;
  if (!isReplicated(d.store)) throw invalid('bad_store', 'wireReplicated needs the PostgreSQL store');
  const db = d.store;
  if (config.upstream !== 'local') {
    throw invalid('unsupported_combination', `store: postgres keeps the root in the database and signs intermediates with it (upstream: local); upstream: ${config.upstream} with replicas is not supported yet`);
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
  const boot = await bootstrapReplicated(db, opts, now);
  // The local token issuer's first key is created under the same lock, so replicas starting
  // together share one key instead of each minting its own.
  await db.withBootstrapLock(async () => void (await LocalTokenIssuer.open(db, { passphrase: d.passphrase })));
  if (boot.createdRoot) log.info({ fingerprint: boot.root.cert.fingerprint256, store: 'postgres' }, 'created a new root in the database');
  if (boot.createdIntermediate) log.info({ cluster: config.cluster, store: 'postgres' }, 'created the cluster intermediate in the database');

  let material: SigningMaterial = { signer: signerFromBundle(boot.bundle), roots: boot.bundle.roots };
  let generation = boot.generation;
  // Earlier intermediates still valid: their workload certificates may renew over mTLS here,
  // even on a replica that started after they were replaced.
  let previous: ParsedCertificate[] = (await db.materialHistory('intermediate', config.cluster))
    .filter((r) => r.generation < boot.generation && r.notAfter.getTime() > now().getTime())
    .map((r) => parseCertificate(r.certPem));
  const listeners: ((m: SigningMaterial) => void)[] = [];
  const swap = (v: VersionedBundle): void => {
    if (v.generation <= generation) return;
    generation = v.generation;
    previous.push(material.signer.cert);
    material = { signer: signerFromBundle(v.bundle), roots: v.bundle.roots };
    for (const l of listeners) l(material);
  };
  const follower = new MaterialFollower({ db, cluster: config.cluster, passphrase: d.passphrase, log, onNewer: swap }, generation);
  await follower.start();

  // pg is loaded only by deployments that use it (importing it costs about 15 MB in a bare process).
  const advisory: PgAdvisoryElector | undefined =
    d.role === 'worker' ? undefined : new (await import('../leader/pg-advisory.js')).PgAdvisoryElector({ url: db.url, identity: id, log });
  const elector = advisory ?? new NeverLeader();
  const lead = leadership(elector, id, now);
  const pause = Number(process.env[FAILPOINT_PAUSE] ?? 0) || undefined;
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
          pauseBeforeCommitMs: pause,
        },
        signal,
      ),
    );
  });
  await elector.start();

  return {
    type: 'local',
    mode: 'intermediate',
    get material() {
      return material;
    },
    createdIntermediate: boot.createdIntermediate,
    createdRoot: boot.createdRoot,
    leadership: lead,
    generation: () => generation,
    nextRenewal: () => {
      const c = material.signer.cert;
      const before = config.renewBefore !== undefined && config.renewBefore < ttl ? config.renewBefore : ttl / 3;
      return new Date(c.notAfter.getTime() - before * 1000);
    },
    createAuthority: (policy, n) => new Authority(material, policy, n),
    issuers: (): X509Certificate[] => {
      // Workload certificates never outlive their issuer: an expired intermediate has none left to renew over mTLS.
      const t = now().getTime();
      previous = previous.filter((c) => c.notAfter.getTime() > t);
      return [material.signer.cert.node, ...previous.map((c) => c.node)];
    },
    onSwap: (l) => void listeners.push(l),
    reload: () => void follower.check(),
    // Returns the promise (startServer's cleanup awaits it). Leadership goes first, so that the
    // lock is released at once for a follower and no renewal starts while the store closes.
    close: () => lead.stop().finally(() => follower.stop()),
  };
}
