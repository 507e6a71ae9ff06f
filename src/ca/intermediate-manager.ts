import type { ParsedCertificate } from '../pki/certificate.js';
import { verifyChain } from '../pki/chain.js';
import { createCsr } from '../pki/csr.js';
import { MeshcaError, errorMessage } from '../pki/errors.js';
import { issueWorkloadCertificate, type IssuedCertificate, type Signer, type WorkloadRequest } from '../pki/issue.js';
import { DEFAULT_KEY_ALGORITHM, generateKeyPairAsync, keyMatches, type KeyAlgorithm } from '../pki/keys.js';
import { generatingKey, type Progress } from '../util/progress.js';
import type { SubjectSpec } from '../pki/name.js';
import type { Upstream } from '../upstream/index.js';
import type { CaBundle } from './bundle.js';
import { signerFromBundle } from './state.js';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export type IntermediateEvent =
  | { type: 'renewed'; bundle: CaBundle; generation: number }
  | { type: 'renewal_failed'; error: MeshcaError; attempts: number; retryAt: Date }
  | { type: 'persist_failed'; error: MeshcaError };

export interface IntermediateManagerOptions {
  upstream: Upstream;
  /** Lifetime asked of the upstream for each intermediate (it may give less). */
  ttlSeconds: number;
  /** Renew this long before NotAfter. Default: a third of the lifetime, like cert-manager. */
  renewBeforeSeconds?: number;
  subject: SubjectSpec;
  /** Default rsa-2048, like every key meshca creates. */
  keyAlgorithm?: KeyAlgorithm;
  /** Told about key generations slow enough for a person to notice. */
  progress?: Progress;
  pathLen?: number;
  clock?: Clock;
  /** A bundle from disk or the store: used while valid and not due, so a restart needs no upstream call. */
  initial?: CaBundle;
  /** Persists each new bundle before it is swapped in (state dir, store, Secret). A failure is reported, not fatal. */
  onRenewed?: (bundle: CaBundle) => Promise<void> | void;
  onEvent?: (event: IntermediateEvent) => void;
  /** Backoff after a failed renewal: initialDelayMs doubling up to maxDelayMs (defaults 1 s and 5 min). */
  retry?: { initialDelayMs?: number; maxDelayMs?: number };
  /** Longest real-time wait between checks (default 60 s), so a suspended host or a changed clock is noticed. */
  maxCheckIntervalMs?: number;
  /** No internal timer: the caller drives tick() (tests, or a server with its own scheduler). */
  manualSchedule?: boolean;
}

export interface IntermediateStatus {
  /** A signer exists and the clock is inside its validity window. */
  ready: boolean;
  notBefore?: Date;
  notAfter?: Date;
  /** Seconds of life left in the current intermediate (0 once expired). */
  remainingSeconds?: number;
  nextRenewal?: Date;
  /** When the current intermediate entered (or enters) its renewal window; unlike nextRenewal, retries do not move it. */
  renewFrom?: Date;
  /** The last failed renewal, cleared by a success. */
  lastError?: { message: string; reason: string; at: Date; attempts: number };
  lastRenewal?: Date;
  renewing: boolean;
  /** Counts swaps: 1 after the first intermediate. */
  generation: number;
  subject?: string;
  serial?: string;
}

interface Active {
  bundle: CaBundle;
  signer: Signer;
}

/**
 * Keeps a signing intermediate from an Upstream fresh. It renews `renewBefore` ahead of expiry,
 * retries failures with capped backoff while signing on with the current intermediate, and swaps
 * the signer in one assignment: a request that already called current() finishes with the old
 * signer, the next one gets the new signer, and no request ever sees "no signer".
 */
export class IntermediateManager {
  private active?: Active;
  /** A renewed intermediate whose NotBefore is still ahead of our clock (skew): swapped in once valid. */
  private pending?: Active;
  private inflight?: Promise<Signer>;
  private nextRenewalAt?: Date;
  private lastError?: IntermediateStatus['lastError'];
  private lastRenewal?: Date;
  private failures = 0;
  private generation = 0;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly clock: Clock;

  constructor(private readonly o: IntermediateManagerOptions) {
    if (!(o.ttlSeconds > 0))
      throw new MeshcaError('invalid_argument', 'bad_ttl', `intermediate TTL must be positive, got ${o.ttlSeconds}s`);
    this.clock = o.clock ?? systemClock;
  }

  /**
   * Adopts the initial bundle when it is still valid; otherwise obtains one from the upstream and
   * throws if that fails (the retries keep running in the background until stop()).
   */
  async start(): Promise<void> {
    this.stopped = false;
    const now = this.clock.now();
    if (this.o.initial && this.o.initial.caCert.notAfter.getTime() > now.getTime()) {
      this.install({ bundle: this.o.initial, signer: signerFromBundle(this.o.initial) }, false);
    }
    if (!this.active || this.isDue(now)) {
      try {
        await this.renewNow();
      } catch (e) {
        if (!this.active) throw e;
      }
    }
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** The signer for the next request. Throws `unavailable` when there is none or it has expired. */
  current(): Signer {
    const a = this.active;
    const now = this.clock.now().getTime();
    if (!a)
      throw new MeshcaError(
        'unavailable',
        'no_intermediate',
        `no signing intermediate yet${this.lastError ? `: ${this.lastError.message}` : ''}`,
      );
    if (now > a.signer.cert.notAfter.getTime()) {
      throw new MeshcaError(
        'unavailable',
        'intermediate_expired',
        `the signing intermediate expired at ${a.signer.cert.notAfter.toISOString()} and renewal has not succeeded${this.lastError ? `: ${this.lastError.message}` : ''}`,
      );
    }
    return a.signer;
  }

  /** The bundle behind the current signer (for writing cacerts files or serving roots). */
  bundle(): CaBundle | undefined {
    return this.active?.bundle;
  }

  roots(): ParsedCertificate[] {
    return this.active?.bundle.roots ?? [];
  }

  /** Signs a workload CSR with the signer current at the call; the clock supplies `now` unless given. */
  sign(req: Omit<WorkloadRequest, 'now'> & { now?: Date }): IssuedCertificate {
    const signer = this.current();
    return issueWorkloadCertificate(signer, { ...req, now: req.now ?? this.clock.now() });
  }

  status(): IntermediateStatus {
    const a = this.active;
    const now = this.clock.now().getTime();
    const cert = a?.signer.cert;
    return {
      ready: cert !== undefined && now >= cert.notBefore.getTime() && now <= cert.notAfter.getTime(),
      notBefore: cert?.notBefore,
      notAfter: cert?.notAfter,
      remainingSeconds: cert ? Math.max(0, Math.floor((cert.notAfter.getTime() - now) / 1000)) : undefined,
      nextRenewal: this.nextRenewalAt,
      renewFrom: cert && this.renewAt(cert),
      lastError: this.lastError,
      lastRenewal: this.lastRenewal,
      renewing: this.inflight !== undefined,
      generation: this.generation,
      subject: cert?.subject,
      serial: cert?.serialHex,
    };
  }

  /** Renews when due (or swaps in a pending intermediate once valid). The timer calls this; tests call it after moving the clock. */
  async tick(): Promise<void> {
    const now = this.clock.now();
    if (this.pending && now.getTime() >= this.pending.signer.cert.notBefore.getTime()) {
      const p = this.pending;
      this.pending = undefined;
      this.install(p, true);
    }
    if (this.inflight) {
      await this.inflight.catch(() => undefined);
      return;
    }
    if (!this.pending && this.isDue(now)) await this.renewNow().catch(() => undefined);
  }

  /** Renews now; concurrent calls share one renewal. Rejects when this attempt fails (a retry is scheduled). */
  renewNow(): Promise<Signer> {
    if (!this.inflight) {
      this.inflight = this.renew().finally(() => {
        this.inflight = undefined;
        this.schedule();
      });
    }
    return this.inflight;
  }

  private isDue(now: Date): boolean {
    return this.nextRenewalAt === undefined || now.getTime() >= this.nextRenewalAt.getTime();
  }

  private async renew(): Promise<Signer> {
    try {
      const alg = this.o.keyAlgorithm ?? DEFAULT_KEY_ALGORITHM;
      const key = (await generatingKey(this.o.progress, alg, 'the upstream intermediate', () => generateKeyPairAsync(alg))).privateKey;
      const csr = createCsr({ key, subject: this.o.subject, isCA: true });
      const got = await this.o.upstream.signIntermediate({ csrPem: csr.pem, ttlSeconds: this.o.ttlSeconds, pathLen: this.o.pathLen });
      if (!keyMatches(key, got.cert.publicKey)) {
        throw new MeshcaError(
          'internal',
          'upstream_key_mismatch',
          `upstream ${this.o.upstream.source} certified a different key than the one requested`,
        );
      }
      const root = got.chain[got.chain.length - 1] ?? got.cert;
      const bundle: CaBundle = { caCert: got.cert, caKey: key, chain: [got.cert, ...got.chain], roots: [root] };
      // Verified before anyone signs with it: a bad chain from the upstream must not replace a good one.
      const at = new Date(Math.max(this.clock.now().getTime(), got.cert.notBefore.getTime()));
      const check = verifyChain(bundle.chain, { now: at, roots: bundle.roots });
      if (!check.ok)
        throw new MeshcaError(
          'internal',
          'upstream_bad_chain',
          `upstream ${this.o.upstream.source} returned a chain that does not verify: ${check.problems.join('; ')}`,
        );
      await this.persist(bundle);
      const next = { bundle, signer: signerFromBundle(bundle) };
      if (got.cert.notBefore.getTime() > this.clock.now().getTime() && this.active) {
        this.pending = next;
        this.nextRenewalAt = got.cert.notBefore;
      } else {
        this.install(next, true);
      }
      this.failures = 0;
      this.lastError = undefined;
      this.lastRenewal = this.clock.now();
      return next.signer;
    } catch (e) {
      const err = e instanceof MeshcaError ? e : new MeshcaError('internal', 'renewal_failed', errorMessage(e), { cause: e });
      this.failures++;
      const retryAt = new Date(this.clock.now().getTime() + this.backoffMs());
      this.nextRenewalAt = retryAt;
      this.lastError = { message: err.message, reason: err.reason, at: this.clock.now(), attempts: this.failures };
      this.o.onEvent?.({ type: 'renewal_failed', error: err, attempts: this.failures, retryAt });
      throw err;
    }
  }

  private async persist(bundle: CaBundle): Promise<void> {
    if (!this.o.onRenewed) return;
    try {
      await this.o.onRenewed(bundle);
    } catch (e) {
      const error =
        e instanceof MeshcaError
          ? e
          : new MeshcaError('internal', 'persist_failed', `cannot persist the new intermediate: ${errorMessage(e)}`, { cause: e });
      this.o.onEvent?.({ type: 'persist_failed', error });
    }
  }

  private backoffMs(): number {
    const initial = this.o.retry?.initialDelayMs ?? 1000;
    const max = this.o.retry?.maxDelayMs ?? 300_000;
    const ceiling = Math.min(max, initial * 2 ** Math.min(this.failures - 1, 30));
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  /** The single assignment that swaps signers. */
  private install(next: Active, renewed: boolean): void {
    this.active = next;
    this.generation++;
    this.nextRenewalAt = this.renewAt(next.signer.cert);
    if (renewed) this.o.onEvent?.({ type: 'renewed', bundle: next.bundle, generation: this.generation });
  }

  private renewAt(cert: ParsedCertificate): Date {
    const life = cert.notAfter.getTime() - cert.notBefore.getTime();
    let before = (this.o.renewBeforeSeconds ?? life / 3000) * 1000;
    // An upstream may cut the lifetime (issuer expiry, PCA's 7-day short-lived cap) below renewBefore;
    // renewing at once would then loop, so fall back to the default third.
    if (before >= life) before = life / 3;
    return new Date(cert.notAfter.getTime() - before);
  }

  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped || this.o.manualSchedule) return;
    const at = this.pending?.signer.cert.notBefore ?? this.nextRenewalAt;
    const wait = at ? at.getTime() - this.clock.now().getTime() : 0;
    const delay = Math.max(0, Math.min(wait, this.o.maxCheckIntervalMs ?? 60_000));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick().finally(() => this.schedule());
    }, delay);
    this.timer.unref();
  }
}
