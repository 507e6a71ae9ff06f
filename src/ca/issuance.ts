import type { Authenticator, AuthResult, Credentials } from '../auth/types.js';
import { toMeshcaError } from '../errors.js';
import { MeshcaError, invalid, type ErrorCode } from '../pki/errors.js';
import type { Store } from '../store/index.js';
import { RefusalAuditLimiter, summaryMessage } from './audit-limit.js';
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
  /** A refusal of an unknown caller whose audit row was left out (counted in a summary row). */
  suppressed?(r: { reason: string }): void;
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
  /**
   * Audit rows per second (and burst) for refusals whose caller is unknown; the rest are counted
   * in one summary row a second. Per process: each --workers worker has its own bound.
   */
  unauthenticatedAuditRate?: number;
  unauthenticatedAuditBurst?: number;
}

/** Istio cluster IDs are free-form, but a client-supplied one is written to the audit: printable ASCII, bounded. */
const CLUSTER_ID_RE = /^[\x20-\x7e]*$/;
const MAX_CLUSTER_ID = 253;

function validClusterId(id: string): boolean {
  return id.length <= MAX_CLUSTER_ID && CLUSTER_ID_RE.test(id);
}

/** A client-supplied cluster ID as it may be written down: escaped when not printable ASCII, and truncated. */
export function auditableClusterId(id: string | undefined): string | undefined {
  if (id === undefined || validClusterId(id)) return id;
  const escaped = JSON.stringify(id.length > 64 ? id.slice(0, 64) : id)
    .slice(1, -1)
    .replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `${escaped.slice(0, 200)}${id.length > 64 ? '...' : ''}`;
}

const secondsSince = (t: number): number => (performance.now() - t) / 1000;

/**
 * One certificate request from any transport: authenticate, rate-limit, sign, audit. Every outcome
 * is audited, refusals included, and a refusal never leaves a certificate behind (signing is the
 * last step that can fail).
 */
export class IssuanceService {
  private readonly now: () => Date;
  private readonly auditLimiter: RefusalAuditLimiter;
  private summaryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly d: IssuanceDeps) {
    this.now = d.now ?? (() => new Date());
    this.auditLimiter = new RefusalAuditLimiter(d.unauthenticatedAuditRate, d.unauthenticatedAuditBurst);
  }

  /** Writes the summary of suppressed refusals still pending; call before the store closes. */
  close(): void {
    if (this.summaryTimer) clearTimeout(this.summaryTimer);
    this.summaryTimer = undefined;
    this.writeSummary();
  }

  private writeSummary(): void {
    const s = this.auditLimiter.takeSummary();
    if (!s) return;
    try {
      this.d.store.appendAudit({
        time: this.now(),
        outcome: 'refused',
        reason: 'refusals_suppressed',
        identity: '',
        caller: '',
        method: '',
        cluster: this.d.cluster,
        message: summaryMessage(s),
      });
    } catch {
      // A closed store loses the summary as it would lose the rows; the metric still has the counts.
    }
  }

  /**
   * Answers synchronously when nothing waits on I/O (a cached token or a client certificate, and
   * the local signer): the hot path then takes no promise hop from request to answer. A remote
   * authenticator or signer makes it a promise. A refusal is always a rejected promise, never a
   * synchronous throw, so callers handle failure in one place.
   */
  issue(req: IssueRequest): SignResult | Promise<SignResult> {
    const started = performance.now();
    this.d.observer?.begin();
    let caller: AuthResult | Promise<AuthResult>;
    try {
      const notReady = this.d.authority.notReadyReason();
      if (notReady) throw new MeshcaError('unavailable', 'ca_not_ready', `the CA cannot sign: ${notReady}`);
      caller = this.d.authenticator.authenticate(req.credentials);
    } catch (e) {
      return this.refuse(req, undefined, e, started);
    }
    if (caller instanceof Promise) {
      return caller.then(
        (c) => this.authorized(req, c, started),
        (e: unknown) => this.refuse(req, undefined, e, started),
      );
    }
    return this.authorized(req, caller, started);
  }

  /** Rate limit, sign, audit: the rest of a request whose caller is known. */
  private authorized(req: IssueRequest, caller: AuthResult, started: number): SignResult | Promise<SignResult> {
    try {
      if (req.clientCluster !== undefined && !validClusterId(req.clientCluster)) {
        throw invalid(
          'bad_cluster_id',
          `ClusterID "${auditableClusterId(req.clientCluster)}" is not a cluster ID (at most ${MAX_CLUSTER_ID} printable ASCII characters)`,
        );
      }
      this.d.limiter.take(caller.caller, this.now().getTime());
      const signReq = { csr: req.csr, caller, ttlSeconds: req.ttlSeconds, metadata: req.metadata };
      if (this.d.workloadSigner) {
        return this.d.workloadSigner.sign(signReq).then(
          (r) => this.issued(req, caller, r, started),
          (e: unknown) => this.refuse(req, caller, e, started),
        );
      }
      // The local signer is synchronous.
      return this.issued(req, caller, this.d.authority.sign(signReq), started);
    } catch (e) {
      return this.refuse(req, caller, e, started);
    }
  }

  /** Audits an issued certificate; a failure to queue the row refuses the request like any other error. */
  private issued(req: IssueRequest, caller: AuthResult, r: SignResult, started: number): SignResult | Promise<never> {
    try {
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
      this.d.observer?.issued({ method: caller.method, seconds: secondsSince(started) });
      return r;
    } catch (e) {
      return this.refuse(req, caller, e, started);
    }
  }

  /** Audits a refusal and answers it as a rejected promise. */
  private refuse(req: IssueRequest, caller: AuthResult | undefined, e: unknown, started: number): Promise<never> {
    const err = toMeshcaError(e);
    try {
      const time = this.now();
      if (caller === undefined && !this.auditLimiter.admit(time.getTime())) {
        // Over the bound: counted, not written, and the CSR is not parsed for the row.
        if (this.auditLimiter.suppress(err.reason, time)) {
          this.summaryTimer = setTimeout(() => {
            this.summaryTimer = undefined;
            this.writeSummary();
          }, 1000);
          this.summaryTimer.unref();
        }
        this.d.observer?.suppressed?.({ reason: err.reason });
      } else {
        this.d.store.appendAudit({
          time,
          outcome: 'refused',
          reason: err.reason,
          identity: requestedIdentity(req.csr, this.d.authority.policy.maxCsrBytes),
          caller: caller?.caller ?? '',
          method: caller?.method ?? '',
          cluster: this.d.cluster,
          clientCluster: auditableClusterId(req.clientCluster),
          message: err.message,
        });
      }
      this.d.observer?.refused({ reason: err.reason, code: err.code, seconds: secondsSince(started), authenticated: caller !== undefined });
    } catch (auditErr) {
      return Promise.reject(auditErr);
    }
    return Promise.reject(err);
  }
}
