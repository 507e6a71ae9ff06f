import type { V1Lease } from '@kubernetes/client-node';
import { apiStatus, apiMessage, type KubeClient } from '../k8s/client.js';
import { LeadershipTerms, type LeaderElector } from './index.js';
import { sleep } from '../util/sleep.js';

export interface LeaseElectorOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  /** holderIdentity: the pod name, unique among replicas. */
  identity: string;
  /** How long a lease holds without renewal (default 15 s, client-go's default). */
  leaseDurationMs?: number;
  /** A leader that could not renew for this long steps down (default 10 s; below the lease duration). */
  renewDeadlineMs?: number;
  /** Between attempts, for followers and for the leader's renewals (default 2 s). */
  retryPeriodMs?: number;
  /** Wall clock for renewTime/acquireTime; expiry is judged on the local monotonic clock. */
  now?: () => Date;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void; debug?(obj: object, msg: string): void };
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: the holder renews
 * every retry period; a follower takes the lease once it has seen the same record unchanged for a
 * whole lease duration (measured on its own clock, so clock skew between replicas does not
 * matter); every write carries the resourceVersion read, so two candidates cannot both win (the
 * loser gets 409 Conflict). A leader that sees another holder, or cannot renew within the renew
 * deadline, aborts its term at once, before any further API call.
 */
export class LeaseElector implements LeaderElector {
  readonly identity: string;
  private readonly terms = new LeadershipTerms();
  private readonly stopping = new AbortController();
  private running: Promise<void> | undefined;
  /** The last lease record seen, and when (monotonic ms) it last changed. */
  private observed: { record: string; at: number } | undefined;
  /** When (monotonic ms) this replica last renewed successfully. */
  private lastRenew = 0;
  private readonly now: () => Date;

  constructor(private readonly o: LeaseElectorOptions) {
    this.identity = o.identity;
    this.now = o.now ?? (() => new Date());
  }

  private get durationMs(): number {
    return this.o.leaseDurationMs ?? 15_000;
  }

  start(): Promise<void> {
    if (!this.running) {
      let first!: () => void;
      const attempted = new Promise<void>((r) => (first = r));
      this.running = this.loop(first);
      return attempted;
    }
    return Promise.resolve();
  }

  /** Steps down and releases the lease (holderIdentity cleared) so that a follower takes over at once. */
  async stop(o: { release?: boolean } = {}): Promise<void> {
    const wasLeader = this.terms.leading;
    this.stopping.abort();
    await this.running;
    this.terms.end('stopped');
    if (wasLeader && o.release !== false) await this.release();
  }

  isLeader(): boolean {
    return this.terms.leading;
  }

  onStartedLeading(l: (signal: AbortSignal) => void): void {
    this.terms.onStarted(l);
  }

  onStoppedLeading(l: () => void): void {
    this.terms.onStopped(l);
  }

  private async loop(attempted: () => void): Promise<void> {
    const retry = this.o.retryPeriodMs ?? 2000;
    // A request to a hung API server blocks the loop; the deadline is still kept by this timer.
    const watchdog = setInterval(() => this.checkDeadline(), Math.max(10, Math.min(retry, 1000)));
    watchdog.unref();
    try {
      await this.campaign(retry, attempted);
    } finally {
      clearInterval(watchdog);
    }
  }

  private checkDeadline(): void {
    if (this.terms.leading && performance.now() - this.lastRenew > (this.o.renewDeadlineMs ?? 10_000)) {
      this.lose('could not renew the lease within the renew deadline');
    }
  }

  private async campaign(retry: number, attempted: () => void): Promise<void> {
    while (!this.stopping.signal.aborted) {
      let ok = false;
      try {
        ok = await this.tryAcquireOrRenew();
      } catch (e) {
        this.o.log?.warn({ lease: this.o.name, identity: this.identity, err: apiMessage(e) }, 'leader election: lease request failed');
      }
      attempted();
      if (this.stopping.signal.aborted) break;
      if (ok) {
        this.lastRenew = performance.now();
        if (!this.terms.leading) {
          this.o.log?.info({ lease: `${this.o.namespace}/${this.o.name}`, identity: this.identity }, 'leader election: became leader');
          this.terms.begin();
        }
      } else {
        this.checkDeadline();
      }
      await sleep(retry, this.stopping.signal);
    }
  }

  private lose(why: string): void {
    if (!this.terms.leading) return;
    this.terms.end(`leadership lost: ${why}`);
    this.o.log?.warn({ lease: this.o.name, identity: this.identity, reason: why }, 'leader election: lost leadership; controllers stopped');
  }

  /** One round; true when this replica holds the lease afterwards. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const api = this.o.client.coordination;
    const { namespace, name } = this.o;
    const now = this.now();
    const spec = (acquire: Date, transitions: number) => ({
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.max(1, Math.ceil(this.durationMs / 1000)),
      acquireTime: this.o.client.microTime(acquire),
      renewTime: this.o.client.microTime(now),
      leaseTransitions: transitions,
    });
    let lease: V1Lease;
    try {
      lease = await api.readNamespacedLease({ name, namespace });
    } catch (e) {
      if (apiStatus(e) !== 404) throw e;
      try {
        await api.createNamespacedLease({
          namespace,
          body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec: spec(now, 0) },
        });
        return true;
      } catch (e2) {
        if (apiStatus(e2) === 409) return false;
        throw e2;
      }
    }
    const s = lease.spec ?? {};
    const holder = s.holderIdentity ?? '';
    const record = JSON.stringify([holder, String(s.renewTime ?? ''), s.leaseDurationSeconds ?? 0]);
    const mono = performance.now();
    if (!this.observed || this.observed.record !== record) this.observed = { record, at: mono };
    const heldByOther = holder !== '' && holder !== this.identity;
    if (heldByOther) {
      // Another holder is a fact, not a failure: a leader that sees it steps down at once.
      this.lose(`the lease is held by ${holder}`);
      const ttl = (s.leaseDurationSeconds ?? this.durationMs / 1000) * 1000;
      if (mono - this.observed.at < ttl) return false;
    }
    const mine = holder === this.identity;
    const acquire = mine && s.acquireTime ? new Date(String(s.acquireTime)) : now;
    const transitions = (s.leaseTransitions ?? 0) + (mine ? 0 : 1);
    try {
      const updated = await api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: spec(acquire, transitions) } });
      const u = updated.spec ?? {};
      this.observed = {
        record: JSON.stringify([u.holderIdentity ?? '', String(u.renewTime ?? ''), u.leaseDurationSeconds ?? 0]),
        at: performance.now(),
      };
      return true;
    } catch (e) {
      if (apiStatus(e) === 409) return false;
      throw e;
    }
  }

  private async release(): Promise<void> {
    const api = this.o.client.coordination;
    try {
      const lease = await api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
      if (lease.spec?.holderIdentity !== this.identity) return;
      const now = this.o.client.microTime(this.now());
      await api.replaceNamespacedLease({
        name: this.o.name,
        namespace: this.o.namespace,
        body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now } },
      });
      this.o.log?.info({ lease: this.o.name, identity: this.identity }, 'leader election: released the lease');
    } catch (e) {
      this.o.log?.warn({ lease: this.o.name, err: apiMessage(e) }, 'leader election: could not release the lease; it expires on its own');
    }
  }
}
