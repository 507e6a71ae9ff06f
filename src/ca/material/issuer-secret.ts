import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { issuerSecretRef } from '../../config/issuer-secret.js';
import { errorMessage } from '../../pki/errors.js';
import { generateKeyPair } from '../../pki/keys.js';
import { createRootCertificate } from '../../pki/profiles.js';
import { FileSecretSink } from '../../resources/file-secrets.js';
import { secretLabel, type SecretRef } from '../../resources/secrets.js';
import { watchSecret } from '../../resources/watch.js';
import { Authority, type Policy, type SigningMaterial } from '../authority.js';
import { CERT_MANAGER_FILES, ISTIO_FILES } from '../bundle.js';
import { checkBundle } from '../bundle-check.js';
import { signerFromBundle } from '../state.js';
import { chainsTo } from './bundle-reload.js';
import { MaterialHolder, heldSource } from './holder.js';
import type { MaterialDeps, MaterialSource } from './source.js';

/**
 * istio-csr's role: workloads are signed with the CA key pair of a Secret that a cert-manager
 * `Certificate` (isCA, e.g. `istio-system/istio-ca` issued through an AWSPCAIssuer) keeps
 * renewed. The Secret is read where it is written (the file-backed sink under the state
 * directory, where meshca's controllers put it, or the Kubernetes API, where cert-manager does),
 * validated as istiod would load it, and swapped in whenever it changes; a Secret that does not
 * validate never replaces a good one. Until a valid Secret has been read, the server runs with a
 * throwaway placeholder CA that signs nothing and /readyz says why, so that serve can start before
 * its own controllers have issued the Certificate.
 */

const FILES = [...CERT_MANAGER_FILES, ...ISTIO_FILES];

/** A Secret's data as read: undefined when it does not exist, an Error when it could not be read. */
export type SecretData = Record<string, Buffer> | undefined | Error;

export interface IssuerSecretRead {
  /** Of every known key's presence and value: tells a rewrite from a touch. */
  digest: string;
  material?: SigningMaterial;
  /** Why the Secret cannot sign now, naming the Secret. */
  problem?: string;
}

/** The known files of a Secret in the file-backed sink, or undefined when there are none. */
export function readSecretDir(dir: string): Record<string, Buffer> | undefined {
  const data: Record<string, Buffer> = {};
  for (const f of FILES) {
    try {
      data[f] = readFileSync(join(dir, f));
    } catch {
      // Absent: the layout check names what is missing.
    }
  }
  return Object.keys(data).length > 0 ? data : undefined;
}

/** Validates a Secret's data (cert-manager's tls.crt, tls.key, ca.crt, or Istio's four files) at `now`. */
export function validateIssuerSecret(data: SecretData, label: string, where: string, now: Date): IssuerSecretRead {
  const h = createHash('sha256');
  if (data instanceof Error) {
    const problem = `${label} cannot be read from ${where}: ${errorMessage(data)}`;
    return { digest: h.update('error\0').update(problem).digest('hex'), problem };
  }
  const files: Record<string, string> = {};
  for (const f of FILES) {
    const v = data?.[f];
    h.update(f).update(v ? '\0' : '\0missing\0');
    if (v) {
      h.update(v).update('\0');
      files[f] = v.toString('utf8');
    }
  }
  const digest = h.digest('hex');
  if (Object.keys(files).length === 0) return { digest, problem: `${label} not found (no tls.crt, tls.key, ca.crt in ${where})` };
  const r = checkBundle(files, { now });
  if (!r.ok || !r.bundle) return { digest, problem: `${label} cannot sign workload certificates: ${r.errors.join('; ')}` };
  return { digest, material: { signer: signerFromBundle(r.bundle), roots: r.bundle.roots } };
}

/** Signs nothing (the authority refuses while no Secret is valid); only the serving certificate hangs below it meanwhile. */
function placeholderMaterial(label: string, now: Date): SigningMaterial {
  const key = generateKeyPair('ec-p256').privateKey;
  const cert = createRootCertificate({
    key,
    subject: { organization: ['meshca'], commonName: `placeholder until ${label} is valid` },
    days: 30,
    now,
  });
  return { signer: { cert, key, chain: [] }, roots: [cert] };
}

type Log = Pick<MaterialDeps['log'], 'info' | 'warn' | 'error'>;

export interface IssuerSecretReloadOptions {
  ref: SecretRef;
  /** Where the Secret is read from, for messages. */
  where: string;
  initial: SecretData;
  now: () => Date;
  log: Log;
  /** Read again shortly after a refused read: a writer without a change marker may be halfway through. */
  refetch?: () => void;
}

/** The current material from the Secret, its refusals, and whether anything valid has been read yet. */
export class IssuerSecretReload {
  readonly holder: MaterialHolder;
  readonly label: string;
  /** NAMESPACE/NAME, for logs and /readyz. */
  private readonly ref: string;
  private digest: string;
  /** Why nothing can be signed: set until the first valid Secret is read. */
  private pendingReason: string | undefined;
  private lastRefusal: { message: string; at: Date } | undefined;
  private failedDigest: string | undefined;
  private lastReload: Date | undefined;
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly o: IssuerSecretReloadOptions) {
    this.label = secretLabel(o.ref);
    this.ref = `${o.ref.namespace}/${o.ref.name}`;
    const first = validateIssuerSecret(o.initial, this.label, o.where, o.now());
    this.digest = first.digest;
    if (!first.material) {
      this.pendingReason = first.problem;
      this.failedDigest = first.digest;
      this.lastRefusal = { message: first.problem!, at: o.now() };
      o.log.warn({ secret: this.ref, err: first.problem }, 'no usable issuer secret yet: not ready, signing nothing until it is valid');
    }
    this.holder = new MaterialHolder(first.material ?? placeholderMaterial(this.label, o.now()), {
      now: o.now,
      // A renewed Certificate keeps its root: workloads of the previous key renew over mTLS until it expires.
      stillTrusted: chainsTo,
      onListenerError: (e) => o.log.error({ err: errorMessage(e) }, 'a listener of the reloaded issuer secret failed'),
    });
    if (first.material) this.loaded(first.material);
  }

  /** Why the server must not sign, or undefined once a valid Secret has been read. */
  get pending(): string | undefined {
    return this.pendingReason;
  }

  /**
   * Takes the Secret as just read. When it changed (or, with `retryFailed`, when the last read was
   * refused: a certificate not yet valid becomes valid by itself) it is validated and, when valid,
   * swapped in; returns true then. Never throws; a refused Secret is logged once per content.
   */
  offer(data: SecretData, retryFailed = false): boolean {
    const r = validateIssuerSecret(data, this.label, this.o.where, this.o.now());
    if (r.digest === this.digest && !(retryFailed && this.failedDigest === r.digest)) return false;
    if (!r.material) {
      this.lastRefusal = { message: r.problem!, at: this.o.now() };
      if (this.pendingReason) this.pendingReason = r.problem;
      if (this.failedDigest !== r.digest) {
        this.failedDigest = r.digest;
        this.o.log.warn(
          { secret: this.ref, err: r.problem },
          this.pendingReason
            ? 'the issuer secret is not usable; still not ready'
            : 'the changed issuer secret is not usable; still signing with the current CA',
        );
        const refetch = this.o.refetch;
        if (refetch) {
          clearTimeout(this.retry);
          this.retry = setTimeout(refetch, 500);
          this.retry.unref();
        }
      }
      return false;
    }
    this.digest = r.digest;
    this.failedDigest = undefined;
    this.lastRefusal = undefined;
    this.pendingReason = undefined;
    // The same CA under a changed ca.crt still swaps: the trust bundle changed.
    this.holder.swap(r.material, true);
    this.loaded(r.material);
    return true;
  }

  private loaded(m: SigningMaterial): void {
    this.lastReload = this.o.now();
    const c = m.signer.cert;
    this.o.log.info(
      {
        secret: this.ref,
        subject: c.subject,
        serial: c.serialHex,
        notAfter: c.notAfter.toISOString(),
        roots: m.roots.map((r) => r.fingerprint256),
      },
      'signing with the issuer secret',
    );
  }

  /** The /readyz detail. */
  status(): Record<string, unknown> {
    const c = this.holder.material.signer.cert;
    const ready = this.pendingReason === undefined;
    return {
      type: 'issuer-secret',
      secret: this.ref,
      ready,
      serial: ready ? c.serialHex : null,
      notAfter: ready ? c.notAfter.toISOString() : null,
      remainingSeconds: ready ? Math.max(0, Math.floor((c.notAfter.getTime() - this.o.now().getTime()) / 1000)) : null,
      lastReload: this.lastReload?.toISOString() ?? null,
      lastError: this.lastRefusal ? { message: this.lastRefusal.message, at: this.lastRefusal.at.toISOString() } : null,
    };
  }

  close(): void {
    clearTimeout(this.retry);
  }
}

/** The local Authority, not ready (and refusing to sign) while no valid Secret has been read. */
class IssuerSecretAuthority extends Authority {
  constructor(
    material: SigningMaterial,
    policy: Policy,
    now: () => Date,
    private readonly pending: () => string | undefined,
  ) {
    super(material, policy, now);
  }

  override notReadyReason(): string | undefined {
    return this.pending() ?? super.notReadyReason();
  }

  override rootsKnown(): boolean {
    return this.pending() === undefined;
  }
}

export interface IssuerSecretWatch {
  /** Watch for changes here (the single process and the primary; workers read again when told). */
  watchMarker: boolean;
  markerIntervalMs?: number;
  /** Fallback look at the Secret, which also retries one refused for its validity window; 0 disables it. */
  pollMs?: number;
}

/** How the Secret is read and watched: `refresh` reads it again, `stop` ends the watching. */
interface Reader {
  where: string;
  initial: SecretData;
  refresh(reload: IssuerSecretReload, retryFailed?: boolean): void;
  watch(reload: IssuerSecretReload): () => void;
}

/** The file-backed sink: the change marker the sink writes last, plus a periodic look at the files. */
function fileReader(stateDir: string, ref: SecretRef, w: IssuerSecretWatch): Reader {
  const sink = new FileSecretSink(stateDir);
  const dir = sink.dataDir(ref);
  const refresh = (reload: IssuerSecretReload, retryFailed = false) => void reload.offer(readSecretDir(dir), retryFailed);
  return {
    where: dir,
    initial: readSecretDir(dir),
    refresh,
    watch: (reload) => {
      const stops: (() => void)[] = [];
      if (w.watchMarker) stops.push(watchSecret(sink, ref, () => refresh(reload), { intervalMs: w.markerIntervalMs ?? 250 }));
      const poll = w.pollMs ?? 10_000;
      if (poll > 0) {
        const t = setInterval(() => refresh(reload, true), poll);
        t.unref();
        stops.push(() => clearInterval(t));
      }
      return () => stops.forEach((s) => s());
    },
  };
}

/** The Kubernetes API of `kubeconfig`: read every few seconds by the primary, and when a worker is told. */
async function kubeReader(kubeconfig: string | undefined, ref: SecretRef, w: IssuerSecretWatch): Promise<Reader> {
  const { KubeClient } = await import('../../k8s/client.js');
  const { KubeSecretSink } = await import('../../k8s/secret-sink.js');
  const client = await KubeClient.load({ kubeconfig });
  const sink = new KubeSecretSink({ client });
  const read = (): Promise<SecretData> =>
    sink.get(ref).then(
      (s) => s?.data,
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    );
  let busy = false;
  const refresh = (reload: IssuerSecretReload, retryFailed = false) => {
    if (busy) return;
    busy = true;
    void read()
      .then((data) => reload.offer(data, retryFailed))
      .finally(() => (busy = false));
  };
  return {
    where: `the Kubernetes API at ${client.server}`,
    initial: await read(),
    refresh,
    watch: (reload) => {
      if (!w.watchMarker) return () => undefined;
      const t = setInterval(() => refresh(reload, true), w.pollMs || 5_000);
      t.unref();
      return () => clearInterval(t);
    },
  };
}

/** `issuerSecret` in the config: the Secret's key pair signs; the primary watches it, workers reload when told. */
export async function openIssuerSecretSource(
  d: Pick<MaterialDeps, 'config' | 'log' | 'now'>,
  w: IssuerSecretWatch,
): Promise<MaterialSource> {
  const ref = issuerSecretRef(d.config.issuerSecret!);
  const reader =
    d.config.issuerSecretSource === 'kubernetes' ? await kubeReader(d.config.kubeconfig, ref, w) : fileReader(d.config.dir, ref, w);
  const reload: IssuerSecretReload = new IssuerSecretReload({
    ref,
    where: reader.where,
    initial: reader.initial,
    now: d.now,
    log: d.log,
    refetch: () => reader.refresh(reload),
  });
  const stop = reader.watch(reload);
  const h = reload.holder;
  return heldSource(h, {
    // The placeholder vouches for no workload.
    issuers: () => (reload.pending ? [] : h.issuers()),
    createAuthority: (policy, now) => new IssuerSecretAuthority(h.material, policy, now, () => reload.pending),
    describe: () => ({ origin: 'state-dir' }),
    readyDetail: () => reload.status(),
    reload: () => reader.refresh(reload),
    bundleWritten: () => reader.refresh(reload),
    close: () => {
      stop();
      reload.close();
    },
  });
}
