import type { LeaderElector, Leadership } from '../../leader/index.js';
import type { PgAdvisoryElector } from '../../leader/pg-advisory.js';
import { NeverLeader, leadershipOf } from '../../leader/sole.js';
import { errorMessage } from '../../pki/errors.js';
import type { PgStore } from '../../store/postgres/index.js';
import type { MaterialDeps } from './source.js';

export interface ReplicaElection {
  /** The advisory-lock elector (absent in a worker, which never leads); its fence guards leader-only writes. */
  advisory?: PgAdvisoryElector;
  elector: LeaderElector;
  lead: Leadership;
}

/**
 * A replica's place in the PostgreSQL advisory-lock election, each term recorded in leader_terms.
 * Not started: the caller registers its leader tasks first, then calls elector.start().
 */
export async function replicaElection(
  db: PgStore,
  d: Pick<MaterialDeps, 'log' | 'now'>,
  id: string,
  elect: boolean,
): Promise<ReplicaElection> {
  const { log, now } = d;
  // pg is loaded only by deployments that use it: importing it costs memory every other process would pay.
  const advisory: PgAdvisoryElector | undefined = elect
    ? new (await import('../../leader/pg-advisory.js')).PgAdvisoryElector({ url: db.url, identity: id, log })
    : undefined;
  const elector = advisory ?? new NeverLeader();
  const lead = leadershipOf(elector, id, now);
  lead.onLeader(() => {
    void db.recordLeaderTerm(id, now()).then(
      (term) => log.info({ term, identity: id }, 'leading'),
      (e: unknown) => log.warn({ err: errorMessage(e) }, 'cannot record the leader term'),
    );
  });
  return { advisory, elector, lead };
}
