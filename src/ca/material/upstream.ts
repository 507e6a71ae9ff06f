import { intermediateTtlOf, upstreamBlock } from '../../config/upstream.js';
import type { ParsedCertificate } from '../../pki/certificate.js';
import { errorMessage, invalid, isMeshcaError } from '../../pki/errors.js';
import { generateKeyPair } from '../../pki/keys.js';
import type { Leadership } from '../../leader/index.js';
import { META } from '../../store/index.js';
import { createUpstream, type Upstream } from '../../upstream/index.js';
import type { Authority, SigningMaterial } from '../authority.js';
import type { CaBundle } from '../bundle.js';
import { IntermediateManager, type IntermediateEvent } from '../intermediate-manager.js';
import { upstreamServingIssuer } from '../serving.js';
import { signerFromBundle } from '../state.js';
import { RaAuthority, RemoteWorkloadSigner, type WorkloadSigner } from '../workload-signer.js';
import { MaterialHolder, heldSource } from './holder.js';
import { RenewalMetrics } from './renewal-metrics.js';
import type { MaterialDeps, MaterialSource } from './source.js';
import { UpstreamMetrics } from './upstream-metrics.js';

/**
 * `meshca serve` with an upstream CA (files, AWS PCA, Kubernetes CSR): where the signing material
 * comes from and how it changes while the server runs.
 *
 * - intermediate mode, single process or primary: an IntermediateManager obtains the intermediate,
 *   persists every new bundle to the state dir, renews it `renewBefore` ahead of expiry and keeps
 *   signing with the current one while the upstream is unreachable. Only this process talks to the
 *   upstream; with --workers the primary tells workers to reload.
 * - worker: reads the bundle the primary persisted, again on every reload().
 * - ra mode: no CA key here; RemoteWorkloadSigner sends each authorized CSR upstream.
 */

type Deps = Pick<MaterialDeps, 'config' | 'state' | 'store' | 'log' | 'now' | 'passphrase' | 'progress'>;

const sourceKey = (cluster: string) => `upstream.source.${cluster}`;

function materialOf(b: CaBundle): SigningMaterial {
  return { signer: signerFromBundle(b), roots: b.roots };
}

const iso = (d: Date | undefined) => d?.toISOString() ?? null;

/** The single process or the primary: the one that talks to the upstream. */
export async function openUpstreamSource(d: Deps): Promise<MaterialSource> {
  const upstream = await createUpstream(upstreamBlock(d.config), {
    stateDir: d.config.dir,
    passphrase: d.passphrase,
    now: d.now,
    warn: (m) => d.log.warn({}, m),
  });
  try {
    return d.config.upstreamMode === 'ra' || d.config.upstream === 'k8s-csr'
      ? await raWiring(d, upstream)
      : await intermediateWiring(d, upstream);
  } catch (e) {
    upstream.close?.();
    throw e;
  }
}

/** The bundle on disk, when it came from this very upstream; anything else is replaced, not reused. */
async function reusableBundle(d: Deps, source: string): Promise<CaBundle | undefined> {
  const { state, config, log } = d;
  if (!state.hasCluster(config.cluster)) return undefined;
  const recorded = await d.store.getMeta(sourceKey(config.cluster));
  if (recorded !== source) {
    log.warn(
      { cluster: config.cluster, recorded: recorded ?? null, upstream: source },
      'the cluster intermediate on disk was not issued by this upstream; it will be replaced by one from the upstream',
    );
    return undefined;
  }
  try {
    return state.loadCluster(config.cluster);
  } catch (e) {
    log.warn({ err: errorMessage(e) }, 'the stored upstream intermediate is unreadable; asking the upstream for a new one');
    return undefined;
  }
}

async function intermediateWiring(d: Deps, upstream: Upstream): Promise<MaterialSource> {
  const { config, state, store, log } = d;
  const ttl = intermediateTtlOf(config);
  let holder: MaterialHolder | undefined;
  const metrics = new UpstreamMetrics(upstream.type, () => manager.status().remainingSeconds);
  const renewal = new RenewalMetrics([metrics.registry], config.cluster, () => manager.status().renewFrom);
  const onEvent = (ev: IntermediateEvent): void => {
    if (ev.type === 'renewed') {
      metrics.renewed();
      log.info(
        {
          upstream: upstream.source,
          serial: ev.bundle.caCert.serialHex,
          notAfter: ev.bundle.caCert.notAfter.toISOString(),
          generation: ev.generation,
        },
        'new intermediate from the upstream',
      );
      holder?.swap(materialOf(ev.bundle));
    } else if (ev.type === 'renewal_failed') {
      metrics.error(ev.error.reason);
      renewal.failed();
      log.warn(
        { upstream: upstream.source, err: ev.error.message, attempts: ev.attempts, retryAt: ev.retryAt.toISOString() },
        'intermediate renewal failed; signing continues with the current intermediate',
      );
    } else {
      metrics.error('persist_failed');
      log.error(
        { err: ev.error.message },
        'the new intermediate could not be written to the state directory; a restart will ask the upstream again',
      );
    }
  };
  const manager = new IntermediateManager({
    upstream,
    ttlSeconds: ttl,
    renewBeforeSeconds: config.renewBefore ?? ttl / 3,
    subject: { organization: [config.trustDomain], commonName: `meshca intermediate ${config.cluster}` },
    keyAlgorithm: config.keyAlgorithm,
    progress: d.progress,
    clock: { now: d.now },
    initial: await reusableBundle(d, upstream.source),
    // Written before the swap, so a restart (and a worker's reload) finds the bundle in use.
    onRenewed: async (b) => {
      state.adoptCluster(config.cluster, b, { force: true });
      await store.setMeta(sourceKey(config.cluster), upstream.source);
      await store.setMeta(META.intermediatePrefix + config.cluster, b.caCert.fingerprint256);
    },
    onEvent,
  });
  try {
    await manager.start();
  } catch (e) {
    manager.stop();
    throw e;
  }
  const created = manager.status().lastRenewal !== undefined;
  holder = new MaterialHolder(materialOf(manager.bundle()!), { now: d.now });
  const h = holder;
  return heldSource(h, {
    createdIntermediate: created,
    metrics: metrics.registry,
    describe: () => ({ origin: 'upstream', nextRenewal: manager.status().nextRenewal }),
    readyDetail: () => {
      const s = manager.status();
      return {
        type: upstream.type,
        ...(upstream.type === 'awspca' ? { arn: upstream.source } : { source: upstream.source }),
        mode: 'intermediate',
        ready: s.ready,
        serial: s.serial ?? null,
        notAfter: iso(s.notAfter),
        remainingSeconds: s.remainingSeconds ?? null,
        nextRenewal: iso(s.nextRenewal),
        renewing: s.renewing,
        lastRenewal: iso(s.lastRenewal),
        lastError: s.lastError
          ? { message: s.lastError.message, reason: s.lastError.reason, at: s.lastError.at.toISOString(), attempts: s.lastError.attempts }
          : null,
      };
    },
    close: () => {
      manager.stop();
      upstream.close?.();
    },
  });
}

/** A worker of a primary that talks to the upstream: reads the bundle the primary persisted, again on every reload. */
export function openUpstreamWorkerSource(d: Pick<MaterialDeps, 'config' | 'state' | 'log' | 'now'>): MaterialSource {
  const load = () => materialOf(d.state.loadCluster(d.config.cluster));
  const h = new MaterialHolder(load(), { now: d.now });
  return heldSource(h, {
    describe: () => ({ origin: 'state-dir' }),
    reload: () => {
      try {
        h.swap(load());
      } catch (e) {
        d.log.error({ err: errorMessage(e) }, 'cannot reload the renewed intermediate; signing continues with the current one');
      }
    },
  });
}

/**
 * RA mode: every workload CSR goes to the upstream. `extra` is what replicas add: their own
 * leadership, its shutdown before the upstream closes, and the serving certificate's own path.
 */
export async function raWiring(
  d: Deps,
  upstream: Upstream,
  extra: { leadership?: Leadership; close?: () => Promise<void>; servingUpstream?: Upstream } = {},
): Promise<MaterialSource> {
  if (!upstream.signWorkload) throw invalid('bad_upstream', `upstream ${upstream.type} cannot sign workload certificates (RA mode)`);
  await upstream.check();
  const roots = await upstream.roots();
  // Authority's material needs a key; in RA mode RaAuthority.sign refuses to sign, so this one is never used.
  const unusedKey = generateKeyPair('ec-p256').privateKey;
  // Until the upstream has issued something, its issuing CA is known only when it is the root.
  const h = new MaterialHolder({ signer: { cert: roots[0], key: unusedKey, chain: [] }, roots }, { now: d.now });
  const noteIssuer = (chain: ParsedCertificate[]): void => {
    if (chain.length > 0) h.swap({ signer: { cert: chain[0], key: unusedKey, chain: chain.slice(1) }, roots });
  };
  let lastError: { message: string; reason: string; at: Date } | undefined;
  let lastSuccess: Date | undefined;
  const remaining = () => Math.max(0, Math.floor((h.material.signer.cert.notAfter.getTime() - d.now().getTime()) / 1000));
  const metrics = new UpstreamMetrics(upstream.type, remaining);
  const hooks = {
    onIssued: (got: { chain: ParsedCertificate[] }) => {
      lastError = undefined;
      lastSuccess = d.now();
      noteIssuer(got.chain);
    },
    onError: (e: unknown) => {
      const reason = isMeshcaError(e) ? e.reason : 'upstream_error';
      lastError = { message: errorMessage(e), reason, at: d.now() };
      metrics.error(reason);
    },
  };
  let authority: Authority | undefined;
  let signer: WorkloadSigner | undefined;
  return heldSource(h, {
    createAuthority(policy, now) {
      authority = new RaAuthority(h.material, policy, now);
      signer = new RemoteWorkloadSigner(authority, upstream, () => roots, hooks);
      return authority;
    },
    get workloadSigner() {
      return signer;
    },
    servingIssuer: () => upstreamServingIssuer(extra.servingUpstream ?? upstream, hooks),
    metrics: metrics.registry,
    describe: () => ({ origin: 'upstream' }),
    readyDetail: () => {
      const c = h.material.signer.cert;
      return {
        type: upstream.type,
        ...(upstream.type === 'awspca' ? { arn: upstream.source } : { source: upstream.source }),
        mode: 'ra',
        ready: authority?.notReadyReason() === undefined,
        issuingCA: c.subject,
        notAfter: c.notAfter.toISOString(),
        remainingSeconds: remaining(),
        nextRenewal: null,
        lastSuccess: iso(lastSuccess),
        lastError: lastError ? { message: lastError.message, reason: lastError.reason, at: lastError.at.toISOString() } : null,
      };
    },
    leadership: extra.leadership,
    close: async () => {
      await extra.close?.();
      upstream.close?.();
    },
  });
}
