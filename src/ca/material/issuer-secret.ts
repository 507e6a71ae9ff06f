import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { issuerSecretRef } from '../../config/issuer-secret.js';
import type { ParsedCertificate } from '../../pki/certificate.js';
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
 * renewed. The Secret is read where the declarative controllers write it (the file-backed sink
 * under the state directory), validated as istiod would load it, and swapped in whenever it
 * changes; a Secret that does not validate never replaces a good one. Until a valid Secret has
 * been read, the server runs with a throwaway placeholder CA that signs nothing and /readyz says
 * why, so that serve can start before its own controllers have issued the Certificate.
 */

const FILES = [...CERT_MANAGER_FILES, ...ISTIO_FILES];

export interface IssuerSecretRead {
  /** Of every file's presence and content: tells a rewrite from a touch. */
  digest: string;
  material?: SigningMaterial;
  /** Why the Secret cannot sign now, naming the Secret. */
  problem?: string;
}

/** Reads the Secret's files (cert-manager's tls.crt, tls.key, ca.crt, or Istio's four) and validates them at `now`. */
export function readIssuerSecret(dataDir: string, label: string, now: Date): IssuerSecretRead {
  const files: Record<string, string> = {};
  const h = createHash('sha256');
  for (const f of FILES) {
    let data: Buffer | undefined;
    try {
      data = readFileSync(join(dataDir, f));
    } catch {
      data = undefined;
    }
    h.update(f).update(data ? '\0' : '\0missing\0');
    if (data) {
      h.update(data).update('\0');
      files[f] = data.toString('utf8');
    }
  }
  const digest = h.digest('hex');
  if (Object.keys(files).length === 0) return { digest, problem: `${label} not found (no tls.crt, tls.key, ca.crt in ${dataDir})` };
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
  stateDir: string;
  ref: SecretRef;
  now: () => Date;
  log: Log;
  /** Watch the sink's change marker (the single process and the primary; workers reload when told). */
  watchMarker: boolean;
  markerIntervalMs?: number;
  /** Fallback check of the files' digest, which also retries a Secret refused for its validity window; 0 disables it. */
  pollMs?: number;
}

export class IssuerSecretReload {
  readonly holder: MaterialHolder;
  readonly label: string;
  /** NAMESPACE/NAME, for logs and /readyz. */
  private readonly ref: string;
  private readonly dir: string;
  private digest: string;
  /** Why nothing can be signed: set until the first valid Secret is read. */
  private pendingReason: string | undefined;
  private lastRefusal: { message: string; at: Date } | undefined;
  private failedDigest: string | undefined;
  private lastReload: Date | undefined;
  private readonly stops: (() => void)[] = [];
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly o: IssuerSecretReloadOptions) {
    const sink = new FileSecretSink(o.stateDir);
    this.dir = sink.dataDir(o.ref);
    this.label = secretLabel(o.ref);
    this.ref = `${o.ref.namespace}/${o.ref.name}`;
    const first = readIssuerSecret(this.dir, this.label, o.now());
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
    if (o.watchMarker) this.stops.push(watchSecret(sink, o.ref, () => this.check(), { intervalMs: o.markerIntervalMs ?? 250 }));
    const poll = o.pollMs ?? 10_000;
    if (poll > 0) {
      const t = setInterval(() => this.check(true), poll);
      t.unref();
      this.stops.push(() => clearInterval(t));
    }
  }

  /** Why the server must not sign, or undefined once a valid Secret has been read. */
  get pending(): string | undefined {
    return this.pendingReason;
  }

  /**
   * Re-reads the Secret when its files changed (or, with `retryFailed`, when the last read was
   * refused: a certificate not yet valid becomes valid by itself). Returns true when new material
   * was swapped in. Never throws; a refused Secret is logged once per content.
   */
  check(retryFailed = false): boolean {
    const r = readIssuerSecret(this.dir, this.label, this.o.now());
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
        // A writer without a change marker may be halfway through its files: look again shortly.
        clearTimeout(this.retry);
        this.retry = setTimeout(() => this.check(), 500);
        this.retry.unref();
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
    const c: ParsedCertificate = this.holder.material.signer.cert;
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
    for (const s of this.stops) s();
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
}

/** `issuerSecret` in the config: the Secret's key pair signs; the primary watches it, workers reload when told. */
export function openIssuerSecretSource(
  d: Pick<MaterialDeps, 'config' | 'log' | 'now'>,
  o: { watchMarker: boolean; markerIntervalMs?: number; pollMs?: number },
): MaterialSource {
  const reload = new IssuerSecretReload({
    stateDir: d.config.dir,
    ref: issuerSecretRef(d.config.issuerSecret!),
    now: d.now,
    log: d.log,
    ...o,
  });
  const h = reload.holder;
  return heldSource(h, {
    // The placeholder vouches for no workload.
    issuers: () => (reload.pending ? [] : h.issuers()),
    createAuthority: (policy, now) => new IssuerSecretAuthority(h.material, policy, now, () => reload.pending),
    describe: () => ({ origin: 'state-dir' }),
    readyDetail: () => reload.status(),
    reload: () => void reload.check(),
    bundleWritten: () => void reload.check(),
    close: () => reload.close(),
  });
}
