import { hostname } from 'node:os';
import { SoleLeader, type LeaderElector, type Leadership } from './index.js';

let servers = 0;

/**
 * Who this replica is, in logs, leader_terms and the dashboard: host/pid, with a suffix for the
 * second and later servers of one process (tests run several side by side).
 */
export function newReplicaId(): string {
  servers++;
  return `${hostname()}/${process.pid}${servers > 1 ? `#${servers}` : ''}`;
}

/** Never leads: a worker process serves gRPC only; its primary competes for leadership. */
export class NeverLeader implements LeaderElector {
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  isLeader(): boolean {
    return false;
  }
  onStartedLeading(): void {}
  onStoppedLeading(): void {}
}

/** The server's view of an elector: who it is, whether and since when it leads. */
export function leadershipOf(elector: LeaderElector, identity: string, now: () => Date): Leadership {
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

/** Leadership without an election (SQLite, no Lease): the single process (or the primary) leads; workers never do. */
export async function soleLeadership(leads: boolean, now: () => Date): Promise<Leadership> {
  const id = newReplicaId();
  const elector = leads ? new SoleLeader(id) : new NeverLeader();
  const l = leadershipOf(elector, id, now);
  await elector.start();
  return l;
}
