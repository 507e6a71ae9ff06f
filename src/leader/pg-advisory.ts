import pg from 'pg';
import type { AdvisoryFence } from '../store/ca-material.js';
import { LOCKS, LOCK_NAMESPACE } from '../store/postgres/locks.js';
import type { LeaderElector } from './index.js';
import { sleep } from '../util/sleep.js';

export interface PgAdvisoryElectorOptions {
  url: string;
  /** This replica's name, for logs and pg_stat_activity. */
  identity: string;
  /** Advisory lock (two-int form); default meshca's leader lock. */
  key?: [number, number];
  /** How often a follower tries the lock (default 500 ms): the bulk of the failover time. */
  retryMs?: number;
  /**
   * After losing leadership to a broken session, wait this long before competing again (default
   * 2 s): the trouble is likely ours (network, a stalled process), so another replica should lead.
   */
  rejoinDelayMs?: number;
  /** How often the leader checks its lock session (default 1 s). */
  checkMs?: number;
  /** A check slower than this counts as a lost session (default 2 s). */
  checkTimeoutMs?: number;
  /**
   * The server ends the lock session (releasing the lock) after this long without a check
   * (default 5 s): a leader that hangs or is cut off from the database loses the lock even if
   * its TCP connection lingers.
   */
  sessionTimeoutMs?: number;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/**
 * Leader election on a PostgreSQL session-level advisory lock held on a connection of its own.
 * The lock lives exactly as long as that session: when the leader process dies, the kernel closes
 * its socket and PostgreSQL releases the lock at once, so a follower (trying every `retryMs`) takes
 * over within about half a second. On our side any sign of trouble on the session (error, end,
 * a slow check) is treated as lost leadership immediately: controllers are aborted first, then the
 * connection is dropped, and only then may this replica compete again. Writes that must only come
 * from the leader carry fence() and verify it inside their transaction (store/postgres/material.ts).
 */
export class PgAdvisoryElector implements LeaderElector {
  private client: pg.Client | undefined;
  private pid: number | undefined;
  private leading: AbortController | undefined;
  private readonly started: ((signal: AbortSignal) => void)[] = [];
  private readonly stopped: (() => void)[] = [];
  private running: Promise<void> | undefined;
  private readonly stopping = new AbortController();
  private readonly key: [number, number];
  /** Set when leadership was lost outside the loop (a session event); the loop then steps aside. */
  private justLost = false;
  /** Wakes the loop early when the session breaks between checks. */
  private wake = new AbortController();

  constructor(private readonly o: PgAdvisoryElectorOptions) {
    this.key = o.key ?? [LOCK_NAMESPACE, LOCKS.leader];
  }

  onStartedLeading(cb: (signal: AbortSignal) => void): void {
    this.started.push(cb);
    // Registered while already leading: start now rather than at the next term.
    if (this.leading) cb(this.leading.signal);
  }

  onStoppedLeading(cb: () => void): void {
    this.stopped.push(cb);
  }

  isLeader(): boolean {
    return this.leading !== undefined;
  }

  /** What a leader-only write checks in its transaction; undefined when not leading. */
  fence(): AdvisoryFence | undefined {
    return this.leading && this.pid !== undefined ? { key1: this.key[0], key2: this.key[1], pid: this.pid } : undefined;
  }

  /** Resolves after the first attempt, so isLeader() is meaningful; the loop keeps running. */
  async start(): Promise<void> {
    if (this.running) return;
    let first!: () => void;
    const attempted = new Promise<void>((r) => (first = r));
    this.running = this.loop(first);
    await attempted;
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.wake.abort();
    await this.running;
    this.lose('stopped');
  }

  private async loop(attempted: () => void): Promise<void> {
    const retry = this.o.retryMs ?? 500;
    const check = this.o.checkMs ?? 1000;
    const rejoin = this.o.rejoinDelayMs ?? 2000;
    while (!this.stopping.signal.aborted) {
      try {
        const c = this.client ?? (await this.connect());
        if (!this.leading) {
          const r = await c.query<{ got: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS got', this.key);
          if (r.rows[0].got && !this.stopping.signal.aborted) this.lead();
          attempted();
          if (!this.leading) await sleep(retry, this.wake.signal);
        } else {
          await this.checkSession(c);
          await sleep(check, this.wake.signal);
        }
      } catch (e) {
        if (this.leading) this.justLost = true;
        this.lose((e as Error).message);
        attempted();
        if (!this.justLost) await sleep(retry, this.stopping.signal);
      }
      if (this.justLost) {
        // Leadership ended because our session broke: the trouble is likely on our side, so step
        // aside for a while and let a healthy replica take over.
        this.justLost = false;
        await sleep(rejoin, this.stopping.signal);
      }
      if (this.wake.signal.aborted && !this.stopping.signal.aborted) this.wake = new AbortController();
    }
  }

  private async connect(): Promise<pg.Client> {
    const c = new pg.Client({
      connectionString: this.o.url,
      application_name: `meshca-leader ${this.o.identity}`.slice(0, 63),
      keepAlive: true,
      connectionTimeoutMillis: 3000,
    });
    const broken = (why: string) => () => {
      if (this.client !== c) return;
      if (this.leading) this.justLost = true;
      this.lose(why);
      this.wake.abort();
    };
    c.on('error', (e) => broken(`lock session error: ${e.message}`)());
    c.on('end', broken('lock session ended'));
    await c.connect();
    try {
      const timeout = this.o.sessionTimeoutMs ?? 5000;
      await c.query(`SET idle_session_timeout = ${Math.max(1000, Math.floor(timeout))}`);
      this.pid = Number((await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    } catch (e) {
      await c.end().catch(() => {});
      throw e;
    }
    this.client = c;
    return c;
  }

  private async checkSession(c: pg.Client): Promise<void> {
    const ms = this.o.checkTimeoutMs ?? 2000;
    let t: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        c.query('SELECT 1'),
        new Promise((_, reject) => {
          t = setTimeout(() => reject(new Error(`lock session check took over ${ms} ms`)), ms);
        }),
      ]);
    } finally {
      clearTimeout(t);
    }
  }

  private lead(): void {
    this.leading = new AbortController();
    this.o.log?.info({ identity: this.o.identity, pid: this.pid }, 'leader: acquired the PostgreSQL advisory lock');
    for (const cb of this.started) cb(this.leading.signal);
  }

  /** Steps down (if leading) and drops the session, whose lock the server then releases. */
  private lose(why: string): void {
    const was = this.leading;
    this.leading = undefined;
    if (was) {
      was.abort(new Error(`leadership lost: ${why}`));
      if (why === 'stopped') this.o.log?.info({ identity: this.o.identity }, 'leader: released the advisory lock');
      else this.o.log?.warn({ identity: this.o.identity, reason: why }, 'leader: lost the advisory lock; controllers stopped');
      for (const cb of this.stopped) cb();
    }
    const c = this.client;
    this.client = undefined;
    this.pid = undefined;
    if (c) {
      c.removeAllListeners();
      c.on('error', () => {});
      void c.end().catch(() => {});
    }
  }
}
