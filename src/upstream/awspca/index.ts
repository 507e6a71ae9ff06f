import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { certLabel, parseCertificate, parseCertificates, type ParsedCertificate } from '../../pki/certificate.js';
import { verifyChain } from '../../pki/chain.js';
import { parseCsr, type ParsedCsr } from '../../pki/csr.js';
import { MeshcaError, invalid } from '../../pki/errors.js';
import type {
  ResumableIssuer,
  SignIntermediateRequest,
  SignWorkloadRequest,
  Upstream,
  UpstreamChain,
  UpstreamContext,
} from '../contract.js';
import { sdkPcaCalls, type CaDescription, type PcaCalls } from './client.js';
import { parseCaArn, type AwsPcaUpstreamConfig, type PcaSigningAlgorithm } from './config.js';
import { errorName, isTransient, pcaError } from './errors.js';
import { abortableSleep, retrying, type RetryHooks } from './retry.js';
import { formatDuration } from '../../config/duration.js';
import { SHORT_LIVED_MAX_SECONDS, endEntityTemplateArn, subordinateTemplateArn } from './templates.js';

export { awsPcaUpstreamSchema, type AwsPcaUpstreamConfig } from './config.js';
export { SHORT_LIVED_MAX_SECONDS } from './templates.js';

export interface AwsPcaDeps {
  /** Replaces the SDK (unit tests). */
  calls?: PcaCalls;
  /** Explicit keys (for example from a Kubernetes Secret) instead of the SDK's default chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  retryHooks?: RetryHooks;
  /** IdempotencyToken source; one token per certificate request, reused by its retries. */
  newToken?: () => string;
}

/** What the upstream asked PCA for, for callers that log or test it. */
export interface PcaIssueRecord {
  token: string;
  certificateArn: string;
  attempts: number;
  validity: { Type: string; Value: number };
  templateArn: string;
}

const DAY = 86_400;

function defaultSigningAlgorithm(keyAlgorithm: string | undefined): PcaSigningAlgorithm {
  if (keyAlgorithm === 'EC_prime256v1') return 'SHA256WITHECDSA';
  if (keyAlgorithm === 'EC_secp384r1') return 'SHA384WITHECDSA';
  return 'SHA256WITHRSA';
}

/** Whole days when the TTL is a whole number of days (robust to clock skew), else an absolute end. */
export function validityFor(ttlSeconds: number, now: Date): { Type: 'DAYS' | 'ABSOLUTE'; Value: number } {
  const ttl = Math.floor(ttlSeconds);
  if (ttl >= DAY && ttl % DAY === 0) return { Type: 'DAYS', Value: ttl / DAY };
  return { Type: 'ABSOLUTE', Value: Math.floor(now.getTime() / 1000) + ttl };
}

/**
 * AWS Private CA as meshca's upstream. One certificate request = one IdempotencyToken, reused on
 * every retry of IssueCertificate (throttling, network errors), so PCA issues (and bills) exactly
 * one certificate however often it throttles us: the failure of aws-privateca-issuer issue #479.
 */
export class AwsPcaUpstream implements Upstream, ResumableIssuer {
  readonly type = 'awspca';
  readonly source: string;
  readonly mode: 'intermediate' | 'ra';
  /** The last issuance, for logs and tests. */
  lastIssue?: PcaIssueRecord;
  private readonly calls: PcaCalls;
  private readonly partition: string;
  private description?: CaDescription;
  private readonly now: () => Date;
  private warnedCap = false;

  constructor(
    private readonly config: AwsPcaUpstreamConfig,
    private readonly ctx: UpstreamContext = {},
    private readonly deps: AwsPcaDeps = {},
  ) {
    const arn = parseCaArn(config.arn);
    if (!arn) throw invalid('bad_upstream', `upstream.arn "${config.arn}" is not an ACM PCA CA ARN`);
    this.source = config.arn;
    this.mode = config.mode;
    this.partition = arn.partition;
    this.now = ctx.now ?? (() => new Date());
    this.calls =
      deps.calls ??
      sdkPcaCalls({
        region: config.region ?? arn.region,
        endpointUrl: config.endpointUrl,
        requestTimeoutMs: config.requestTimeoutMs,
        credentials: deps.credentials,
      });
  }

  private retried<T>(operation: string, op: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return retrying(op, isTransient, this.config.retry, this.deps.retryHooks, signal).catch((e: unknown) => {
      throw pcaError(e, operation, this.source);
    });
  }

  /** DescribeCertificateAuthority: the CA must be ACTIVE; its usage mode decides the validity cap. */
  async check(signal?: AbortSignal): Promise<void> {
    const d = await this.retried('DescribeCertificateAuthority', () => this.calls.describeCa(this.source, signal), signal);
    if (d.Status !== 'ACTIVE') {
      throw new MeshcaError(
        'failed_precondition',
        'pca_not_active',
        `AWS Private CA ${this.source} is ${d.Status ?? 'in an unknown state'}, not ACTIVE; it cannot issue certificates`,
      );
    }
    if (d.Type !== 'ROOT' && d.Type !== 'SUBORDINATE') {
      throw new MeshcaError(
        'failed_precondition',
        'pca_bad_type',
        `AWS Private CA ${this.source} has type ${d.Type ?? 'unknown'}; expected ROOT or SUBORDINATE`,
      );
    }
    if (d.UsageMode === 'SHORT_LIVED_CERTIFICATE' && this.mode === 'intermediate') {
      this.ctx.warn?.(`AWS Private CA ${this.source} is in SHORT_LIVED_CERTIFICATE mode: intermediates from it last at most 7 days`);
    }
    this.description = d;
  }

  private async described(signal?: AbortSignal): Promise<CaDescription> {
    if (!this.description) await this.check(signal);
    return this.description!;
  }

  async signIntermediate(req: SignIntermediateRequest): Promise<UpstreamChain> {
    const arn = await this.requestIntermediate({ ...req, token: (this.deps.newToken ?? randomUUID)(), at: this.now() });
    return this.collectIntermediate(arn, req.csrPem, req.signal);
  }

  /** IssueCertificate for a subordinate CA; its validity is computed from `at`, so a repeat is the same request. */
  async requestIntermediate(req: SignIntermediateRequest & { token: string; at: Date }): Promise<string> {
    const pathLen = req.pathLen ?? this.config.pathLen ?? 0;
    if (!Number.isInteger(pathLen) || pathLen < 0 || pathLen > 3) {
      throw invalid('bad_pathlen', `AWS Private CA templates offer pathlen 0 to 3, not ${pathLen}`);
    }
    const template = this.config.templateArn ?? subordinateTemplateArn(pathLen, this.partition);
    const d = await this.described(req.signal);
    const cap = d.UsageMode === 'SHORT_LIVED_CERTIFICATE' ? SHORT_LIVED_MAX_SECONDS : Infinity;
    return this.request(req.csrPem, template, Math.min(req.ttlSeconds, cap), { token: req.token, at: req.at, isCA: true }, req.signal);
  }

  /** GetCertificate (polling while in progress) for an intermediate requested earlier, perhaps by another process. */
  async collectIntermediate(arn: string, csrPem: string, signal?: AbortSignal): Promise<UpstreamChain> {
    const out = await this.collect(arn, parseCsr(csrPem, 'intermediate CSR'), signal);
    const bc = out.cert.ext.basicConstraints;
    if (!bc?.ca)
      throw new MeshcaError('internal', 'pca_not_ca', `AWS Private CA returned ${certLabel(out.cert)} without CA:TRUE for ${arn}`);
    return out;
  }

  /**
   * The workload CSR itself goes to PCA. In RA mode (and on a SHORT_LIVED_CERTIFICATE CA) validity is
   * capped at 7 days as PCA's short-lived mode requires; otherwise (cert-manager's AWSPCAIssuer, a
   * GENERAL_PURPOSE CA) the requested TTL is asked for as is.
   */
  async signWorkload(req: SignWorkloadRequest): Promise<UpstreamChain> {
    const template = this.config.workloadTemplateArn ?? endEntityTemplateArn(this.partition);
    const d = await this.described(req.signal);
    const capped = this.mode === 'ra' || d.UsageMode === 'SHORT_LIVED_CERTIFICATE';
    const ttl = capped ? Math.min(req.ttlSeconds, SHORT_LIVED_MAX_SECONDS) : req.ttlSeconds;
    if (ttl < req.ttlSeconds && !this.warnedCap) {
      // Once: every workload would repeat the same news.
      this.warnedCap = true;
      this.ctx.warn?.(
        `AWS Private CA ${this.source} issues short-lived certificates (at most 7 days): a requested lifetime of ${formatDuration(req.ttlSeconds)} was granted as ${formatDuration(ttl)}; later requests are capped the same way without this warning`,
      );
    }
    return this.issue(req.csrPem, template, ttl, false, req.signal);
  }

  private async issue(
    csrPem: string,
    templateArn: string,
    ttlSeconds: number,
    isCA: boolean,
    signal?: AbortSignal,
  ): Promise<UpstreamChain> {
    const csr = parseCsr(csrPem, isCA ? 'intermediate CSR' : 'workload CSR');
    const arn = await this.request(
      csrPem,
      templateArn,
      ttlSeconds,
      { token: (this.deps.newToken ?? randomUUID)(), at: this.now(), isCA },
      signal,
    );
    return this.collect(arn, csr, signal);
  }

  /** IssueCertificate with one token for every retry; returns the CertificateArn. */
  private async request(
    csrPem: string,
    templateArn: string,
    ttlSeconds: number,
    o: { token: string; at: Date; isCA: boolean },
    signal?: AbortSignal,
  ): Promise<string> {
    if (!(ttlSeconds > 0)) throw invalid('bad_ttl', `certificate TTL must be positive, got ${ttlSeconds}s`);
    parseCsr(csrPem, o.isCA ? 'intermediate CSR' : 'workload CSR');
    const d = await this.described(signal);
    const validity = validityFor(ttlSeconds, o.at);
    let attempts = 0;
    const issued = await this.retried(
      'IssueCertificate',
      () => {
        attempts++;
        return this.calls.issueCertificate(
          {
            CertificateAuthorityArn: this.source,
            Csr: Buffer.from(csrPem),
            SigningAlgorithm: this.config.signingAlgorithm ?? defaultSigningAlgorithm(d.KeyAlgorithm),
            TemplateArn: templateArn,
            Validity: validity,
            IdempotencyToken: o.token,
          },
          signal,
        );
      },
      signal,
    );
    const certArn = issued.CertificateArn;
    if (!certArn)
      throw new MeshcaError('internal', 'pca_no_arn', `AWS Private CA IssueCertificate on ${this.source} returned no CertificateArn`);
    this.lastIssue = { token: o.token, certificateArn: certArn, attempts, validity, templateArn };
    return certArn;
  }

  private async collect(certArn: string, csr: ParsedCsr, signal?: AbortSignal): Promise<UpstreamChain> {
    const out = await this.poll(certArn, signal);
    const cert = parseCertificate(out.Certificate ?? '', `certificate ${certArn}`);
    if (!cert.publicKey.equals(csr.publicKey)) {
      throw new MeshcaError('internal', 'pca_key_mismatch', `AWS Private CA returned ${certArn} for a different public key than the CSR's`);
    }
    const chain = parseCertificates(out.CertificateChain ?? '', `certificate chain of ${certArn}`).filter((c) => !c.der.equals(cert.der));
    return { cert, chain: checkedChain(cert, chain, certArn) };
  }

  /** GetCertificate until PCA stops answering RequestInProgressException, within pollTimeoutMs. */
  private async poll(certArn: string, signal?: AbortSignal): Promise<{ Certificate?: string; CertificateChain?: string }> {
    const deadline = performance.now() + this.config.pollTimeoutMs;
    let interval = this.config.pollIntervalMs;
    const sleep = this.deps.retryHooks?.sleep ?? abortableSleep;
    for (;;) {
      try {
        return await retrying(
          () => this.calls.getCertificate(this.source, certArn, signal),
          isTransient,
          this.config.retry,
          this.deps.retryHooks,
          signal,
        );
      } catch (e) {
        if (errorName(e) !== 'RequestInProgressException') throw pcaError(e, 'GetCertificate', this.source);
        const left = deadline - performance.now();
        if (left <= 0) {
          throw new MeshcaError(
            'deadline_exceeded',
            'pca_issue_timeout',
            `AWS Private CA did not issue ${certArn} within ${this.config.pollTimeoutMs} ms`,
            { cause: e },
          );
        }
        await sleep(Math.min(interval, left), signal);
        interval = Math.min(interval * 1.5, 5_000);
      }
    }
  }

  async roots(signal?: AbortSignal): Promise<ParsedCertificate[]> {
    const r = await this.retried('GetCertificateAuthorityCertificate', () => this.calls.getCaCertificate(this.source, signal), signal);
    const ca = parseCertificate(r.Certificate ?? '', `CA certificate of ${this.source}`);
    const above = r.CertificateChain ? parseCertificates(r.CertificateChain, `CA chain of ${this.source}`) : [];
    const all = [ca, ...above.filter((c) => !c.der.equals(ca.der))];
    const top = all[all.length - 1];
    if (!top.selfIssued) {
      throw new MeshcaError(
        'failed_precondition',
        'pca_no_root',
        `the chain of AWS Private CA ${this.source} ends at ${certLabel(top)}, which is not a root`,
      );
    }
    return [top];
  }

  close(): void {
    this.calls.close();
  }
}

/** The chain PCA returned must link the certificate up to a self-signed root; anything else is not installed anywhere. */
function checkedChain(cert: ParsedCertificate, chain: ParsedCertificate[], what: string): ParsedCertificate[] {
  const top = chain.length > 0 ? chain[chain.length - 1] : undefined;
  if (!top || !top.selfIssued) {
    throw new MeshcaError('internal', 'pca_bad_chain', `AWS Private CA returned ${what} with a chain that does not end at a root`);
  }
  // Checked when every certificate has started, so a skewed local clock cannot fail a good chain.
  const at = new Date(Math.max(...[cert, ...chain].map((c) => c.notBefore.getTime())) + 1000);
  const r = verifyChain([cert, ...chain], { now: at, roots: [top] });
  if (!r.ok)
    throw new MeshcaError(
      'internal',
      'pca_bad_chain',
      `AWS Private CA returned ${what} whose chain does not verify: ${r.problems.join('; ')}`,
    );
  return chain;
}

export function createAwsPcaUpstream(config: AwsPcaUpstreamConfig, ctx: UpstreamContext = {}, deps: AwsPcaDeps = {}): AwsPcaUpstream {
  return new AwsPcaUpstream(config, ctx, deps);
}
