import type { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { Authority, type Policy, type SigningMaterial } from '../ca/authority.js';
import type { CaBundle } from '../ca/bundle.js';
import { IntermediateManager, type IntermediateEvent } from '../ca/intermediate-manager.js';
import { signerFromBundle, type CaState } from '../ca/state.js';
import { RaAuthority, RemoteWorkloadSigner, type WorkloadSigner } from '../ca/workload-signer.js';
import type { ServeConfig } from '../config/index.js';
import { intermediateTtlOf } from '../config/upstream.js';
import type { ParsedCertificate } from '../pki/certificate.js';
import { errorMessage, invalid, isMeshcaError } from '../pki/errors.js';
import { generateKeyPair } from '../pki/keys.js';
import { META, type Store } from '../store/index.js';
import { createUpstream, type Upstream } from '../upstream/index.js';
import type { ServerRole } from './index.js';
import { RemoteServingTls, type RemoteServingOptions } from './remote-serving-tls.js';
import { UpstreamMetrics } from './upstream-metrics.js';

/**
 * `meshca serve` with an upstream CA (files, AWS PCA): where the signing material comes from and
 * how it changes while the server runs. startServer builds the Authority, metrics, TLS and HTTP as
 * always and subscribes to onSwap; everything upstream-specific is here.
 *
 * - intermediate mode, single process or primary: an IntermediateManager obtains the intermediate,
 *   persists every new bundle to the state dir, renews it `renewBefore` ahead of expiry and keeps
 *   signing with the current one while the upstream is unreachable. Only this process talks to the
 *   upstream; with --workers the primary tells workers to reload (startServer's onCaChanged).
 * - worker: reads the bundle the primary persisted, again on every reload().
 * - ra mode: no CA key here; RemoteWorkloadSigner sends each authorized CSR upstream.
 */

export interface WiringDeps {
  config: ServeConfig;
  state: CaState;
  store: Store;
  log: Logger;
  now: () => Date;
  passphrase?: string;
  role: ServerRole;
}

export interface WiredUpstream {
  readonly type: string;
  readonly mode: 'intermediate' | 'ra';
  /** The first signing material (RA: the upstream's issuing CA and a key that never signs). */
  readonly material: SigningMaterial;
  /** An intermediate was obtained from the upstream at this start (not reused from disk). */
  readonly createdIntermediate: boolean;
  createAuthority(policy: Policy, now: () => Date): Authority;
  /** RA mode, after createAuthority: the signer IssuanceService awaits. */
  readonly workloadSigner?: WorkloadSigner;
  /** RA mode: the gRPC serving certificate comes from the upstream too. */
  startServingTls?(o: RemoteServingOptions): Promise<RemoteServingTls>;
  /** CAs whose workload certificates may renew over mTLS: the current one and earlier ones still valid. */
  issuers(): X509Certificate[];
  /** The `upstream` object of /readyz (processes that talk to the upstream only). */
  readonly readyDetail?: () => Record<string, unknown>;
  readonly metrics?: UpstreamMetrics;
  /** Called with each new signing material: a renewal, a worker's reload, a new issuing CA upstream. */
  onSwap(listener: (m: SigningMaterial) => void): void;
  /** Workers: reload the bundle the primary persisted. */
  reload(): void;
  /** HA returns a promise (leadership and the follower stop); the server's cleanup awaits it. */
  close(): Promise<void> | void;
}

const sourceKey = (cluster: string) => `upstream.source.${cluster}`;

function materialOf(b: CaBundle): SigningMaterial {
  return { signer: signerFromBundle(b), roots: b.roots };
}

const iso = (d: Date | undefined) => d?.toISOString() ?? null;

/** The upstream's config block built from the flat serve keys; validated by the upstream's own schema. */
export function upstreamBlock(c: ServeConfig): Record<string, unknown> {
  if (c.upstream === 'files') return { type: 'files', certFile: c.upstreamCertFile, keyFile: c.upstreamKeyFile, chainFile: c.upstreamChainFile };
  if (c.upstream === 'awspca') {
    return {
      type: 'awspca',
      arn: c.awspcaArn,
      region: c.awspcaRegion,
      endpointUrl: c.awspcaEndpointUrl,
      templateArn: c.awspcaTemplateArn,
      signingAlgorithm: c.awspcaSigningAlgorithm,
      mode: c.upstreamMode,
    };
  }
  if (c.upstream === 'k8s-csr') {
    // Issue 7: always RA mode; the flat k8s keys are in config/k8s.ts.
    return { type: 'k8s-csr', signerName: c.k8sSignerName, approve: c.k8sApprove, timeoutSeconds: c.k8sCsrTimeout, externalCaRoot: c.externalCaRoot, kubeconfig: c.kubeconfig };
  }
  return { type: c.upstream };
}

/** The current material and the listeners; keeps replaced issuers while their certificates may still be in use. */
class Holder {
  private readonly listeners: ((m: SigningMaterial) => void)[] = [];
  private previous: ParsedCertificate[] = [];

  constructor(
    public material: SigningMaterial,
    private readonly now: () => Date,
  ) {}

  swap(m: SigningMaterial): void {
    const old = this.material.signer.cert;
    if (old.der.equals(m.signer.cert.der)) return;
    this.previous.push(old);
    this.material = m;
    for (const l of this.listeners) l(m);
  }

  onSwap(l: (m: SigningMaterial) => void): void {
    this.listeners.push(l);
  }

  issuers(): X509Certificate[] {
    // Leaves never outlive their issuer, so an expired issuer has no live certificates left.
    const t = this.now().getTime();
    this.previous = this.previous.filter((c) => c.notAfter.getTime() > t);
    return [this.material.signer.cert.node, ...this.previous.map((c) => c.node)];
  }
}

export async function wireUpstream(d: WiringDeps): Promise<WiredUpstream> {
  if (d.role === 'worker') return workerWiring(d);
  const upstream = await createUpstream(upstreamBlock(d.config), { stateDir: d.config.dir, passphrase: d.passphrase, now: d.now, warn: (m) => d.log.warn({}, m) });
  try {
    return d.config.upstreamMode === 'ra' || d.config.upstream === 'k8s-csr' ? await raWiring(d, upstream) : await intermediateWiring(d, upstream);
  } catch (e) {
    upstream.close?.();
    throw e;
  }
}

/** The bundle on disk, when it came from this very upstream; anything else is replaced, not reused. */
async function reusableBundle(d: WiringDeps, source: string): Promise<CaBundle | undefined> {
  const { state, config, log } = d;
  if (!state.hasCluster(config.cluster)) return undefined;
  const recorded = await d.store.getMeta(sourceKey(config.cluster));
  if (recorded !== source) {
    log.warn({ cluster: config.cluster, recorded: recorded ?? null, upstream: source }, 'the cluster intermediate on disk was not issued by this upstream; it will be replaced by one from the upstream');
    return undefined;
  }
  try {
    return state.loadCluster(config.cluster);
  } catch (e) {
    log.warn({ err: errorMessage(e) }, 'the stored upstream intermediate is unreadable; asking the upstream for a new one');
    return undefined;
  }
}

async function intermediateWiring(d: WiringDeps, upstream: Upstream): Promise<WiredUpstream> {
  const { config, state, store, log } = d;
  const ttl = intermediateTtlOf(config);
  let holder: Holder | undefined;
  const metrics = new UpstreamMetrics(upstream.type, () => manager.status().remainingSeconds);
  const onEvent = (ev: IntermediateEvent): void => {
    if (ev.type === 'renewed') {
      metrics.renewed();
      log.info({ upstream: upstream.source, serial: ev.bundle.caCert.serialHex, notAfter: ev.bundle.caCert.notAfter.toISOString(), generation: ev.generation }, 'new intermediate from the upstream');
      holder?.swap(materialOf(ev.bundle));
    } else if (ev.type === 'renewal_failed') {
      metrics.error(ev.error.reason);
      log.warn({ upstream: upstream.source, err: ev.error.message, attempts: ev.attempts, retryAt: ev.retryAt.toISOString() }, 'intermediate renewal failed; signing continues with the current intermediate');
    } else {
      metrics.error('persist_failed');
      log.error({ err: ev.error.message }, 'the new intermediate could not be written to the state directory; a restart will ask the upstream again');
    }
  };
  const manager = new IntermediateManager({
    upstream,
    ttlSeconds: ttl,
    renewBeforeSeconds: config.renewBefore ?? ttl / 3,
    subject: { organization: [config.trustDomain], commonName: `meshca intermediate ${config.cluster}` },
    keyAlgorithm: config.keyAlgorithm,
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
  holder = new Holder(materialOf(manager.bundle()!), d.now);
  const h = holder;
  return {
    type: upstream.type,
    mode: 'intermediate',
    material: h.material,
    createdIntermediate: created,
    createAuthority: (policy, now) => new Authority(h.material, policy, now),
    issuers: () => h.issuers(),
    metrics,
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
        lastError: s.lastError ? { message: s.lastError.message, reason: s.lastError.reason, at: s.lastError.at.toISOString(), attempts: s.lastError.attempts } : null,
      };
    },
    onSwap: (l) => h.onSwap(l),
    reload: () => undefined,
    close: () => {
      manager.stop();
      upstream.close?.();
    },
  };
}

function workerWiring(d: WiringDeps): WiredUpstream {
  const load = () => materialOf(d.state.loadCluster(d.config.cluster));
  const h = new Holder(load(), d.now);
  return {
    type: d.config.upstream,
    mode: 'intermediate',
    material: h.material,
    createdIntermediate: false,
    createAuthority: (policy, now) => new Authority(h.material, policy, now),
    issuers: () => h.issuers(),
    onSwap: (l) => h.onSwap(l),
    reload: () => {
      try {
        h.swap(load());
      } catch (e) {
        d.log.error({ err: errorMessage(e) }, 'cannot reload the renewed intermediate; signing continues with the current one');
      }
    },
    close: () => undefined,
  };
}

async function raWiring(d: WiringDeps, upstream: Upstream): Promise<WiredUpstream> {
  if (!upstream.signWorkload) throw invalid('bad_upstream', `upstream ${upstream.type} cannot sign workload certificates (RA mode)`);
  await upstream.check();
  const roots = await upstream.roots();
  // Authority's material needs a key; in RA mode RaAuthority.sign refuses to sign, so this one is never used.
  const unusedKey = generateKeyPair('ec-p256').privateKey;
  // Until the upstream has issued something, its issuing CA is known only when it is the root.
  const h = new Holder({ signer: { cert: roots[0], key: unusedKey, chain: [] }, roots }, d.now);
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
  return {
    type: upstream.type,
    mode: 'ra',
    material: h.material,
    createdIntermediate: false,
    createAuthority(policy, now) {
      authority = new RaAuthority(h.material, policy, now);
      signer = new RemoteWorkloadSigner(authority, upstream, () => roots, hooks);
      return authority;
    },
    get workloadSigner() {
      return signer;
    },
    startServingTls: (o) =>
      RemoteServingTls.start(upstream, {
        ...o,
        onIssue: (c, got) => {
          hooks.onIssued(got);
          o.onIssue?.(c, got);
        },
        onError: hooks.onError,
      }),
    issuers: () => h.issuers(),
    metrics,
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
    onSwap: (l) => h.onSwap(l),
    reload: () => undefined,
    close: () => upstream.close?.(),
  };
}

