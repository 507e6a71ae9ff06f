import type { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ServeConfig } from '../../config/index.js';
import type { Leadership } from '../../leader/index.js';
import type { Store } from '../../store/index.js';
import type { Authority, Policy, SigningMaterial } from '../authority.js';
import type { ServingIssuer } from '../serving.js';
import type { CaState } from '../state.js';
import type { WorkloadSigner } from '../workload-signer.js';
import type { Progress } from '../../util/progress.js';

/** What the dashboard shows of the signing intermediate: where it lives and when it changes. */
export interface SigningView {
  origin: 'state-dir' | 'upstream' | 'database';
  /** The replicated CA's generation of the intermediate. */
  generation?: number;
  nextRenewal?: Date;
}

/**
 * Where `meshca serve` gets what it signs with, and how that changes while it runs. One
 * implementation per source (local bundle, upstream intermediate, upstream worker, RA,
 * replicated); the composition root only reads these members.
 */
export interface MaterialSource {
  /** The material to sign with now. */
  readonly material: SigningMaterial;
  /** Called with each new material: a reload, a renewal, a new issuing CA upstream. */
  onSwap(listener: (m: SigningMaterial) => void): void;
  /** CAs whose workload certificates may renew over mTLS: the current one and earlier ones still valid. */
  issuers(): X509Certificate[];
  /** The Authority that signs (RA: one that refuses to sign locally). */
  createAuthority(policy: Policy, now: () => Date): Authority;
  /** RA mode, after createAuthority: the signer IssuanceService awaits. */
  readonly workloadSigner?: WorkloadSigner;
  /** How the gRPC serving certificate is obtained. */
  servingIssuer(authority: Authority): ServingIssuer;
  /** The `upstream` object of /readyz (processes that talk to an upstream only). */
  readonly readyDetail?: () => Record<string, unknown>;
  /** For the dashboard. */
  describe(): SigningView;
  /** Metrics of the upstream, appended to /metrics. */
  readonly metrics?: Registry;
  /** This source elects its own leader (the replicated CA's advisory lock). */
  readonly leadership?: Leadership;
  readonly createdRoot: boolean;
  readonly createdIntermediate: boolean;
  /** Look for new material now (a worker told by its primary). */
  reload(): void;
  /** The controllers in this process rewrote the served cluster's cacerts. */
  bundleWritten(): void;
  close(): void | Promise<void>;
}

export interface MaterialDeps {
  config: ServeConfig;
  state: CaState;
  store: Store;
  log: Logger;
  now: () => Date;
  passphrase?: string;
  /** Told about slow key generations (RSA-3072/4096); serve logs them. */
  progress?: Progress;
  /**
   * Fault injection for a test: pause between minting and committing a replicated renewal (with an
   * upstream: between the upstream's answer and recording it).
   */
  renewalPauseMs?: number;
}
