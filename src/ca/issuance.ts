import type { Authenticator, AuthResult, Credentials } from '../auth/types.js';
import { toMeshcaError } from '../errors.js';
import { MeshcaError, type ErrorCode } from '../pki/errors.js';
import type { Store } from '../store/index.js';
import { requestedIdentity, type Authority, type SignResult } from './authority.js';
import type { RateLimiter } from './rate-limit.js';
import type { WorkloadSigner } from './workload-signer.js';

export interface IssueRequest {
  credentials: Credentials;
  csr: string;
  ttlSeconds: number;
  metadata?: Record<string, unknown>;
  /** ClusterID the client announced (header or metadata), for the audit. */
  clientCluster?: string;
}

/** What the transports' metrics want to hear about; the service knows nothing of Prometheus. */
export interface IssuanceObserver {
  begin(): void;
  issued(r: { method: string; seconds: number }): void;
  refused(r: { reason: string; code: ErrorCode; seconds: number; authenticated: boolean }): void;
}

export interface IssuanceDeps {
  authenticator: Authenticator;
  authority: Authority;
  store: Store;
  limiter: RateLimiter;
  /** Cluster whose intermediate signs, for the audit. */
  cluster: string;
  /** Signs remotely (RA mode) instead of the Authority's local, synchronous sign. */
  workloadSigner?: WorkloadSigner;
  observer?: IssuanceObserver;
  now?: () => Date;
}

/**
 * One certificate request from any transport: authenticate, rate-limit, sign, audit. Every outcome
 * is audited, refusals included, and a refusal never leaves a certificate behind (signing is the
 * last step that can fail).
 */
export class IssuanceService {
  private readonly now: () => Date;

  constructor(private readonly d: IssuanceDeps) {
    this.now = d.now ?? (() => new Date());
  }

  async issue(req: IssueRequest): Promise<SignResult> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    this.d.observer?.begin();
    let caller: AuthResult | undefined;
    try {
      const notReady = this.d.authority.notReadyReason();
      if (notReady) throw new MeshcaError('unavailable', 'ca_not_ready', `the CA cannot sign: ${notReady}`);
      caller = await this.d.authenticator.authenticate(req.credentials);
      this.d.limiter.take(caller.caller, this.now().getTime());
      const signReq = { csr: req.csr, caller, ttlSeconds: req.ttlSeconds, metadata: req.metadata };
      // The local signer stays synchronous (no extra await on the hot path); a remote one is awaited.
      const r = this.d.workloadSigner ? await this.d.workloadSigner.sign(signReq) : this.d.authority.sign(signReq);
      this.d.store.appendAudit({
        time: this.now(),
        outcome: 'issued',
        reason: 'issued',
        identity: r.identity,
        caller: caller.caller,
        method: caller.method,
        cluster: this.d.cluster,
        clientCluster: req.clientCluster,
        serial: r.issued.serialHex,
        notBefore: r.issued.notBefore,
        notAfter: r.issued.notAfter,
      });
      this.d.observer?.issued({ method: caller.method, seconds: seconds() });
      return r;
    } catch (e) {
      const err = toMeshcaError(e);
      this.d.store.appendAudit({
        time: this.now(),
        outcome: 'refused',
        reason: err.reason,
        identity: requestedIdentity(req.csr, this.d.authority.policy.maxCsrBytes),
        caller: caller?.caller ?? '',
        method: caller?.method ?? '',
        cluster: this.d.cluster,
        clientCluster: req.clientCluster,
        message: err.message,
      });
      this.d.observer?.refused({ reason: err.reason, code: err.code, seconds: seconds(), authenticated: caller !== undefined });
      throw err;
    }
  }
}
