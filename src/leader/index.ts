/**
 * Leader election: several replicas serve requests, one runs the controllers. The elector is
 * generic so that a Kubernetes Lease (lease.ts) and a PostgreSQL advisory lock (pg-advisory.ts)
 * sit behind the same contract, and the server runs its leader-only tasks through
 * runWhileLeading whatever the backend.
 */
export interface LeaderElector {
  /** This replica's name in the election (the Lease's holderIdentity), for logs. */
  readonly identity?: string;
  /** Starts campaigning in the background. A returned promise resolves after the first attempt, so isLeader() is meaningful. */
  start(): void | Promise<void>;
  /**
   * Stops campaigning. A leader steps down first: its tasks are aborted and, where the backend
   * allows, the lock is released so that another replica takes over without waiting for expiry.
   */
  stop(): Promise<void>;
  isLeader(): boolean;
  /**
   * Called each time this replica becomes leader, with a signal that aborts the moment leadership
   * is lost (renewal failed past its deadline, another holder seen) or stop() is called.
   */
  onStartedLeading(listener: (signal: AbortSignal) => void): void;
  /** Called each time this replica stops being leader. */
  onStoppedLeading(listener: () => void): void;
}

/** A task that runs while leading and returns soon after its signal aborts. */
export type LeaderTask = (signal: AbortSignal) => Promise<void>;

export interface LeaderLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * Runs `tasks` each time the elector starts leading, with the leadership signal; a task that fails
 * is logged, not restarted (it is restarted at the next term).
 */
export function runWhileLeading(elector: LeaderElector, tasks: Record<string, LeaderTask>, log?: LeaderLogger): void {
  elector.onStartedLeading((signal) => {
    for (const [name, task] of Object.entries(tasks)) {
      task(signal).then(
        () => log?.info({ task: name }, 'leader task ended'),
        (e: unknown) => log?.error({ task: name, err: e }, 'leader task failed'),
      );
    }
  });
}

/** Listener bookkeeping shared by electors: a signal per term, aborted when the term ends. */
export class LeadershipTerms {
  private readonly started = new Set<(signal: AbortSignal) => void>();
  private readonly stopped = new Set<() => void>();
  private term: AbortController | undefined;

  get leading(): boolean {
    return this.term !== undefined;
  }

  onStarted(l: (signal: AbortSignal) => void): () => void {
    this.started.add(l);
    if (this.term) l(this.term.signal);
    return () => this.started.delete(l);
  }

  onStopped(l: () => void): () => void {
    this.stopped.add(l);
    return () => this.stopped.delete(l);
  }

  begin(): void {
    if (this.term) return;
    this.term = new AbortController();
    for (const l of this.started) l(this.term.signal);
  }

  /** Aborts the term's signal before anything else, so that tasks stop at once. */
  end(reason: string): void {
    const t = this.term;
    if (!t) return;
    this.term = undefined;
    t.abort(new Error(reason));
    for (const l of this.stopped) l();
  }
}

/** No election: a single replica that leads from start to stop. */
export class SoleLeader implements LeaderElector {
  private readonly terms = new LeadershipTerms();
  constructor(readonly identity = 'sole') {}
  start(): void {
    this.terms.begin();
  }
  async stop(): Promise<void> {
    this.terms.end('stopped');
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
}

/** What leader-only work runs on (startServer's controllers, renewals, the dashboard): one shape for every elector. */
export interface Leadership {
  readonly identity: string;
  isLeader(): boolean;
  /** Runs cb(signal) whenever this replica becomes leader; signal aborts when leadership ends. */
  onLeader(cb: (signal: AbortSignal) => void): void;
  /** When the current term started here (undefined when following). */
  since(): Date | undefined;
  stop(): Promise<void>;
}
