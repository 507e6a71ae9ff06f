import { intermediateTtlOf } from '../../config/upstream.js';
import { parseCertificate } from '../../pki/certificate.js';
import type { CaMaterialRows } from '../../store/ca-material.js';
import { MaterialFollower } from '../material-renewal.js';
import { renewalDueAt, type VersionedBundle } from '../material-store.js';
import { signerFromBundle } from '../state.js';
import { MaterialHolder } from './holder.js';
import type { MaterialDeps, SigningView } from './source.js';

/** The replicated CA's material as seen by one replica: the generation it signs with, kept on the newest. */
export interface Generations {
  holder: MaterialHolder;
  follower: MaterialFollower;
  /** Swaps in a newer generation (older or equal ones are ignored). */
  swap(v: VersionedBundle): void;
  /** This replica committed `v`: swap it in and tell the follower. */
  committed(v: VersionedBundle): void;
  describe(origin: SigningView['origin']): SigningView;
  /** The leader's schedule (renewalDueAt) applied to the intermediate this replica signs with. */
  renewFrom(): Date;
}

/**
 * Starts signing with `boot` and follows newer committed generations (NOTIFY or polling). Earlier
 * intermediates still valid stay issuers for mTLS renewals, even on a replica that started after
 * they were replaced.
 */
export async function followGenerations(
  db: Pick<CaMaterialRows, 'materialHistory' | 'latestMaterial' | 'watchMaterial'>,
  d: Pick<MaterialDeps, 'config' | 'log' | 'now' | 'passphrase'>,
  boot: VersionedBundle,
): Promise<Generations> {
  const { config, log, now } = d;
  let generation = boot.generation;
  const previous = (await db.materialHistory('intermediate', config.cluster))
    .filter((r) => r.generation < boot.generation && r.notAfter.getTime() > now().getTime())
    .map((r) => parseCertificate(r.certPem));
  const holder = new MaterialHolder({ signer: signerFromBundle(boot.bundle), roots: boot.bundle.roots }, { now, previous });
  const swap = (v: VersionedBundle): void => {
    if (v.generation <= generation) return;
    generation = v.generation;
    holder.swap({ signer: signerFromBundle(v.bundle), roots: v.bundle.roots });
  };
  const follower = new MaterialFollower({ db, cluster: config.cluster, passphrase: d.passphrase, log, onNewer: swap }, generation);
  await follower.start();
  const ttl = intermediateTtlOf(config);
  const renewFrom = () => renewalDueAt(holder.material.signer.cert, ttl, config.renewBefore);
  return {
    holder,
    follower,
    swap,
    committed: (v) => {
      follower.note(v);
      swap(v);
    },
    describe: (origin) => ({ origin, generation, nextRenewal: renewFrom() }),
    renewFrom,
  };
}
