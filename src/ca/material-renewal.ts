import type { AdvisoryFence } from '../store/ca-material.js';
import { errorMessage } from '../pki/errors.js';
import {
  bundleFromRow,
  commitIntermediate,
  mintIntermediate,
  renewalDueAt,
  rootFromRow,
  type MaterialDb,
  type RenewalDb,
  type MaterialOptions,
  type VersionedBundle,
} from './material-store.js';
import { sleep } from '../util/sleep.js';
import type { CaBundle } from './bundle.js';

export interface MaterialLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RenewalDeps {
  db: RenewalDb;
  options: MaterialOptions & { renewBeforeSeconds?: number };
  now: () => Date;
  /** Proof of leadership, checked inside the committing transaction; undefined when not leading. */
  fence: () => AdvisoryFence | undefined;
  /** Leadership without a database fence (a Lease, whose store checks it on every write); default: a fence is held. */
  leading?: () => boolean;
  log: MaterialLog;
  /** A generation was committed here: swap it in (followers learn of it through MaterialFollower). */
  onCommitted: (v: VersionedBundle) => void;
  /** Longest sleep between looks at the database (default 5 s): another leader may have renewed meanwhile. */
  maxSleepMs?: number;
  /**
   * Fault injection for the HA test (MESHCA_FAILPOINT_RENEWAL_PAUSE_MS): wait this long between
   * minting and committing, so that a SIGKILL can land in the middle of a renewal.
   */
  pauseBeforeCommitMs?: number;
  /** Where the next generation comes from instead of the root in the database (an upstream CA). */
  mint?: (generation: number, signal: AbortSignal) => Promise<CaBundle>;
  /** A renewal attempt failed (counted for alerts); the loop retries with backoff. */
  onFailed?: (e: unknown) => void;
}

/**
 * The leader's intermediate renewal for its cluster, as a loop that runs until `signal` aborts
 * (leadership lost, shutdown). Each round reads the newest committed generation from the database
 * (a previous leader may have renewed, or died half-way), sleeps until it is due, mints a
 * successor and commits it as the next generation under the leader fence. A leader that loses the
 * lock between minting and committing discards what it minted: nothing was signed with it and no
 * replica ever sees it, so every renewal yields exactly one committed CA certificate.
 */
export async function runIntermediateRenewal(d: RenewalDeps, signal: AbortSignal): Promise<void> {
  const o = d.options;
  let failures = 0;
  while (!signal.aborted) {
    try {
      const cur = await d.db.latestMaterial('intermediate', o.cluster);
      // An upstream gives the first generation too; a root in the database made it at bootstrap.
      if (!cur && !d.mint) throw new Error(`cluster "${o.cluster}" has no intermediate in the database`);
      const due = cur ? renewalDueAt(cur, o.intermediateTtlSeconds, o.renewBeforeSeconds) : d.now();
      const wait = due.getTime() - d.now().getTime();
      if (wait > 0) {
        await sleep(Math.min(wait, d.maxSleepMs ?? 5000), signal);
        continue;
      }
      const next = (cur?.generation ?? 0) + 1;
      d.log.info(
        { cluster: o.cluster, generation: next, previous: cur?.serial ?? null, dueAt: due.toISOString() },
        'renewing the cluster intermediate',
      );
      const minted = d.mint ? await d.mint(next, signal) : await mintLocally(d);
      d.log.info({ cluster: o.cluster, generation: next, serial: minted.caCert.serialHex }, 'minted an intermediate; committing');
      if (d.pauseBeforeCommitMs) await sleep(d.pauseBeforeCommitMs, signal);
      const fence = d.fence();
      if (signal.aborted || !(d.leading ? d.leading() : fence)) {
        d.log.warn(
          { cluster: o.cluster, generation: next, serial: minted.caCert.serialHex },
          'leadership lost before the commit; the minted intermediate is discarded unused',
        );
        return;
      }
      if (await commitIntermediate(d.db, minted, next - 1, o, d.now(), fence)) {
        d.log.info(
          { cluster: o.cluster, generation: next, serial: minted.caCert.serialHex, notAfter: minted.caCert.notAfter.toISOString() },
          'committed the renewed intermediate',
        );
        d.onCommitted({ bundle: minted, generation: next });
      } else {
        d.log.warn(
          { cluster: o.cluster, generation: next },
          'another replica committed this generation first; the minted intermediate is discarded unused',
        );
      }
      failures = 0;
    } catch (e) {
      if (signal.aborted) return;
      failures++;
      d.onFailed?.(e);
      const delay = Math.min(30_000, 500 * 2 ** Math.min(failures - 1, 6));
      d.log.error(
        { err: errorMessage(e), attempts: failures, retryInMs: delay },
        'intermediate renewal failed; signing continues with the current intermediate',
      );
      await sleep(delay, signal);
    }
  }
}

async function mintLocally(d: RenewalDeps): Promise<CaBundle> {
  const rootRow = await d.db.latestMaterial('root', '');
  if (!rootRow) throw new Error('the database holds no root');
  return mintIntermediate(rootFromRow(rootRow, d.options.passphrase), d.options, d.now());
}

export interface FollowerDeps {
  db: Pick<MaterialDb, 'latestMaterial' | 'watchMaterial'>;
  cluster: string;
  passphrase?: string;
  log: MaterialLog;
  /** Told about each newer committed generation. */
  onNewer: (v: VersionedBundle) => void;
  /** Poll interval (default 2 s), the fallback when a notification is lost. */
  pollMs?: number;
}

/**
 * Keeps a replica on the newest committed intermediate: woken by NOTIFY when any replica commits,
 * and polling in case a notification is lost (the LISTEN connection dropped). Every replica runs
 * one, the leader included; seeing its own commit again is a no-op.
 */
export class MaterialFollower {
  private generation: number;
  private timer: NodeJS.Timeout | undefined;
  private unwatch: (() => Promise<void>) | undefined;
  private checking: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly d: FollowerDeps,
    generation: number,
  ) {
    this.generation = generation;
  }

  get currentGeneration(): number {
    return this.generation;
  }

  async start(): Promise<void> {
    try {
      this.unwatch = await this.d.db.watchMaterial((kind, cluster) => {
        if (kind === 'intermediate' && cluster === this.d.cluster) void this.check();
      });
    } catch (e) {
      this.d.log.warn({ err: errorMessage(e) }, 'cannot LISTEN for CA material changes; polling only');
    }
    // check() never rejects: look() logs its own failures.
    this.timer = setInterval(() => void this.check(), this.d.pollMs ?? 2000);
    this.timer.unref();
  }

  /** Records a generation this replica committed itself. */
  note(v: VersionedBundle): void {
    if (v.generation > this.generation) this.generation = v.generation;
  }

  /** Looks at the database now; concurrent calls collapse into one more look. */
  check(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.checking) {
      this.again = true;
      return this.checking;
    }
    this.checking = this.look().finally(() => {
      this.checking = undefined;
      if (this.again) {
        this.again = false;
        void this.check();
      }
    });
    return this.checking;
  }

  private async look(): Promise<void> {
    try {
      const r = await this.d.db.latestMaterial('intermediate', this.d.cluster);
      if (!r || r.generation <= this.generation) return;
      const v = { bundle: bundleFromRow(r, this.d.passphrase), generation: r.generation };
      this.generation = r.generation;
      this.d.log.info(
        { cluster: this.d.cluster, generation: r.generation, serial: r.serial, by: r.createdBy },
        'switched to the newest committed intermediate',
      );
      this.d.onNewer(v);
    } catch (e) {
      this.d.log.error(
        { err: errorMessage(e) },
        'cannot load the newest intermediate from the database; signing continues with the current one',
      );
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.unwatch?.();
    await this.checking;
  }
}
