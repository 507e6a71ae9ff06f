import { randomUUID } from 'node:crypto';
import { verifyChain } from '../pki/chain.js';
import { createCsr } from '../pki/csr.js';
import { MeshcaError } from '../pki/errors.js';
import { generateKeyPairAsync, keyMatches } from '../pki/keys.js';
import type { AdvisoryFence, PendingRenewal, UpstreamRenewals } from '../store/ca-material.js';
import type { ResumableIssuer, Upstream } from '../upstream/index.js';
import { sleep } from '../util/sleep.js';
import { keyPem, type CaBundle } from './bundle.js';
import type { MaterialLog } from './material-renewal.js';
import {
  bundleFromRow,
  commitIntermediate,
  decryptKey,
  type MaterialDb,
  type MaterialOptions,
  type VersionedBundle,
} from './material-store.js';

/**
 * The replicated CA's intermediate from an upstream CA (AWS PCA) instead of a root in the
 * database. The request is written to upstream_renewals before the upstream is asked (key
 * encrypted like every CA key, CSR, idempotency token, then the certificate's ARN once known), so a
 * leader that dies anywhere before the commit leaves the next leader enough to finish that very
 * request: it collects a known ARN, or repeats the request with the same token, which the upstream
 * answers with the certificate it already issued. Nothing is committed here: the caller commits
 * the result as the generation under the leader fence, like a locally minted intermediate.
 */

export interface UpstreamMintDeps {
  db: UpstreamRenewals;
  upstream: Upstream & ResumableIssuer;
  options: Pick<MaterialOptions, 'cluster' | 'trustDomain' | 'keyAlgorithm' | 'intermediateTtlSeconds' | 'passphrase' | 'replica'>;
  now: () => Date;
  /** The leader fence for every write; absent under the bootstrap lock (first start). */
  fence?: () => AdvisoryFence | undefined;
  log: MaterialLog;
  /** Fault injection for the HA test: wait this long after the upstream answered the request, before recording its answer. */
  pauseAfterRequestMs?: number;
}

function fenceOf(d: UpstreamMintDeps, generation: number): AdvisoryFence | undefined {
  if (!d.fence) return undefined;
  const f = d.fence();
  if (!f) throw new MeshcaError('unavailable', 'not_leader', `leadership lost; the renewal of generation ${generation} stops here`);
  return f;
}

async function pending(d: UpstreamMintDeps, generation: number): Promise<PendingRenewal> {
  const o = d.options;
  const found = await d.db.pendingRenewal(o.cluster, generation);
  if (found && found.upstream === d.upstream.source) {
    d.log.info(
      { cluster: o.cluster, generation, by: found.createdBy, certificateArn: found.certificateRef ?? null },
      'resuming an intermediate request another replica left unfinished',
    );
    return found;
  }
  const key = (await generateKeyPairAsync(o.keyAlgorithm)).privateKey;
  const csr = createCsr({ key, subject: { organization: [o.trustDomain], commonName: `meshca intermediate ${o.cluster}` }, isCA: true });
  return d.db.beginRenewal(
    {
      cluster: o.cluster,
      generation,
      upstream: d.upstream.source,
      keyPem: keyPem(key, o.passphrase),
      csrPem: csr.pem,
      idempotencyToken: randomUUID(),
      requestedAt: d.now(),
      createdBy: o.replica,
    },
    fenceOf(d, generation),
  );
}

/** Obtains (or finishes obtaining) the intermediate of `generation` from the upstream; not committed. */
export async function mintFromUpstream(d: UpstreamMintDeps, generation: number, signal?: AbortSignal): Promise<CaBundle> {
  const o = d.options;
  const p = await pending(d, generation);
  const what = `intermediate of cluster "${o.cluster}" generation ${generation}`;
  const key = decryptKey(p.keyPem, `pending ${what} key`, o.passphrase);
  let ref = p.certificateRef;
  if (!ref) {
    ref = await d.upstream.requestIntermediate({
      csrPem: p.csrPem,
      ttlSeconds: o.intermediateTtlSeconds,
      token: p.idempotencyToken,
      at: p.requestedAt,
      signal,
    });
    d.log.info({ cluster: o.cluster, generation, certificateArn: ref }, 'the upstream issued the intermediate; recording it');
    if (d.pauseAfterRequestMs) await sleep(d.pauseAfterRequestMs, signal);
    if (signal?.aborted) throw new MeshcaError('unavailable', 'not_leader', `leadership lost; ${ref} is left for the next leader`);
    await d.db.recordRenewalRef(o.cluster, generation, ref, fenceOf(d, generation));
  }
  const got = await d.upstream.collectIntermediate(ref, p.csrPem, signal);
  if (!keyMatches(key, got.cert.publicKey)) {
    throw new MeshcaError('internal', 'upstream_key_mismatch', `upstream ${d.upstream.source} certified another key than the ${what}'s`);
  }
  const root = got.chain[got.chain.length - 1] ?? got.cert;
  const bundle: CaBundle = { caCert: got.cert, caKey: key, chain: [got.cert, ...got.chain], roots: [root] };
  // Checked once every certificate has started, so a skewed local clock cannot fail a good chain.
  const at = new Date(Math.max(d.now().getTime(), ...bundle.chain.map((c) => c.notBefore.getTime())));
  const check = verifyChain(bundle.chain, { now: at, roots: bundle.roots });
  if (!check.ok) {
    throw new MeshcaError(
      'internal',
      'upstream_bad_chain',
      `upstream ${d.upstream.source} returned a chain that does not verify: ${check.problems.join('; ')}`,
    );
  }
  return bundle;
}

/**
 * First start of replicas with an upstream: under the bootstrap lock, the cluster's intermediate
 * is obtained from the upstream and committed as the next generation, unless the newest one
 * already came from this upstream (its request is in upstream_renewals). A replica killed during
 * this leaves its request to the next one to start, as a leader's renewal does.
 */
export async function bootstrapFromUpstream(
  db: MaterialDb & UpstreamRenewals,
  d: Omit<UpstreamMintDeps, 'db' | 'fence'>,
): Promise<VersionedBundle & { created: boolean }> {
  const o = d.options;
  return db.withBootstrapLock(async () => {
    const cur = await db.latestMaterial('intermediate', o.cluster);
    if (cur && (await db.pendingRenewal(o.cluster, cur.generation))?.upstream === d.upstream.source) {
      return { bundle: bundleFromRow(cur, o.passphrase), generation: cur.generation, created: false };
    }
    if (cur) {
      d.log.warn(
        { cluster: o.cluster, generation: cur.generation, upstream: d.upstream.source },
        'the intermediate in the database was not issued by this upstream; asking the upstream for its successor',
      );
    }
    const generation = (cur?.generation ?? 0) + 1;
    const bundle = await mintFromUpstream({ ...d, db }, generation);
    if (!(await commitIntermediate(db, bundle, generation - 1, o, d.now()))) {
      throw new MeshcaError(
        'internal',
        'intermediate_conflict',
        `generation ${generation} of cluster "${o.cluster}" appeared during bootstrap`,
      );
    }
    return { bundle, generation, created: true };
  });
}
