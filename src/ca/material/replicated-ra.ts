import { LocalTokenIssuer } from '../../auth/index.js';
import { upstreamBlock } from '../../config/upstream.js';
import { newReplicaId } from '../../leader/sole.js';
import { invalid } from '../../pki/errors.js';
import type { PgStore } from '../../store/postgres/index.js';
import type { SharedRateBudget } from '../../store/postgres/rate-budget.js';
import { parseCaArn } from '../../upstream/awspca/config.js';
import { createUpstream, type Upstream } from '../../upstream/index.js';
import { replicaElection } from './replica-election.js';
import type { MaterialDeps, MaterialSource } from './source.js';
import { raWiring } from './upstream.js';

/** PCA's IssueCertificate quota is per account and region: one bucket for each. */
function pcaBudget(d: MaterialDeps): SharedRateBudget {
  const { config } = d;
  const arn = parseCaArn(config.awspcaArn ?? '');
  if (!arn) throw invalid('bad_upstream', `awspcaArn "${config.awspcaArn ?? ''}" is not an ACM PCA CA ARN`);
  return (d.store as PgStore).rateBudget(
    `awspca.IssueCertificate/${arn.account}/${config.awspcaRegion ?? arn.region}`,
    config.awspcaIssueRateLimit,
  );
}

/**
 * Replicas on PostgreSQL in RA mode (`upstream: awspca` with `upstreamMode: ra`, or `upstream:
 * k8s-csr`): there is no CA key to share, every replica (and every worker) forwards the CSRs it
 * authorized itself. With PCA they share its IssueCertificate quota, which is per account and
 * region: each call first takes a token from a bucket in the database, and a caller beyond the
 * budget gets RESOURCE_EXHAUSTED with a retry hint at once instead of a call PCA would throttle
 * (and the SDK retry, multiplying the load on PCA). One replica still leads, for the controllers.
 */
export async function openReplicatedRaSource(d: MaterialDeps, o: { elect: boolean }): Promise<MaterialSource> {
  const { config } = d;
  const db = d.store as PgStore;
  if (config.upstream !== 'awspca' && config.upstream !== 'k8s-csr') {
    throw invalid('unsupported_combination', `store: postgres in RA mode needs upstream awspca or k8s-csr, not ${config.upstream}`);
  }
  const budget = config.upstream === 'awspca' ? pcaBudget(d) : undefined;
  const upstream = await createUpstream(upstreamBlock(config), { passphrase: d.passphrase, now: d.now, warn: (m) => d.log.warn({}, m) });
  const through = (take: () => Promise<void>): Upstream => ({
    type: upstream.type,
    source: upstream.source,
    check: () => upstream.check(),
    signIntermediate: (r) => upstream.signIntermediate(r),
    signWorkload: async (r) => {
      await take();
      return upstream.signWorkload!(r);
    },
    roots: () => upstream.roots(),
    close: () => upstream.close?.(),
  });
  const what = `AWS Private CA ${upstream.source} IssueCertificate`;
  const limited = budget ? through(() => budget.take(what)) : upstream;
  // The serving certificate has no caller to retry it: it waits for the budget instead.
  const serving = budget ? through(() => budget.takeWaiting(what, 60_000)) : upstream;
  try {
    // The token issuer's first key is made under the bootstrap lock, so that replicas share one.
    await db.withBootstrapLock(async () => void (await LocalTokenIssuer.open(db, { passphrase: d.passphrase })));
    const { elector, lead } = await replicaElection(db, d, newReplicaId(), o.elect);
    await elector.start();
    return await raWiring(d, limited, { leadership: lead, close: () => lead.stop(), servingUpstream: serving }).catch(
      async (e: unknown) => {
        await lead.stop();
        throw e;
      },
    );
  } catch (e) {
    upstream.close?.();
    throw e;
  }
}
