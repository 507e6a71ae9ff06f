import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { IssuanceObserver } from '../ca/issuance.js';
import type { ParsedCertificate } from '../pki/certificate.js';
import type { ErrorCode } from '../pki/errors.js';

/**
 * Prometheus metrics for one server. Each server gets its own registry so that several can run in
 * one process (tests, benchmarks). Besides meshca's own names, istiod's CA metric names are kept
 * so that existing dashboards and alerts work unchanged. With several worker processes the
 * primary sums counters and histograms over the workers (prom-client's AggregatorRegistry); expiry
 * gauges take the minimum, the earliest expiry being the one to alert on.
 */
export class ServerMetrics implements IssuanceObserver {
  readonly registry = new Registry();
  private readonly issuedTotal: Counter<'method'>;
  private readonly refusedTotal: Counter<'reason' | 'code'>;
  private readonly auditSuppressed: Counter<'reason'>;
  private readonly latency: Histogram<'outcome'>;
  private readonly inflight: Gauge;
  private readonly caExpiry: Gauge<'cluster'>;
  private readonly caNotBefore: Gauge<'cluster'>;
  private readonly rootExpiry: Gauge;
  private readonly servingExpiry: Gauge;
  // istiod parity
  private readonly csrCount: Counter;
  private readonly successCount: Counter;
  private readonly signErrCount: Counter<'error'>;
  private readonly authFailCount: Counter;
  private readonly citadelRootExpiry: Gauge;
  private readonly citadelChainExpiry: Gauge;

  constructor(o: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (o.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.issuedTotal = new Counter({
      name: 'meshca_certificates_issued_total',
      help: 'Workload certificates issued, by authentication method',
      labelNames: ['method'],
      registers,
    });
    this.refusedTotal = new Counter({
      name: 'meshca_certificate_requests_refused_total',
      help: 'Certificate requests refused, by reason and error code',
      labelNames: ['reason', 'code'],
      registers,
    });
    this.auditSuppressed = new Counter({
      name: 'meshca_audit_suppressed_total',
      help: 'Refusals of unauthenticated callers over the per-process audit bound, counted in a summary row instead of audited one by one, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.latency = new Histogram({
      name: 'meshca_issuance_duration_seconds',
      help: 'Time from receiving a certificate request to answering it',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.inflight = new Gauge({ name: 'meshca_inflight_requests', help: 'Certificate requests being processed', registers });
    this.caExpiry = new Gauge({
      name: 'meshca_ca_cert_expiry_timestamp_seconds',
      aggregator: 'min',
      help: 'NotAfter of the issuing intermediate, Unix seconds',
      labelNames: ['cluster'],
      registers,
    });
    this.caNotBefore = new Gauge({
      name: 'meshca_ca_cert_not_before_timestamp_seconds',
      // The earliest with the expiry's minimum: both then describe the oldest intermediate still signing.
      aggregator: 'min',
      help: 'NotBefore of the issuing intermediate, Unix seconds (with the expiry: its lifetime, for renewal-window alerts)',
      labelNames: ['cluster'],
      registers,
    });
    this.rootExpiry = new Gauge({
      name: 'meshca_root_cert_expiry_timestamp_seconds',
      aggregator: 'min',
      help: 'Earliest NotAfter of the trusted roots, Unix seconds',
      registers,
    });
    this.servingExpiry = new Gauge({
      name: 'meshca_serving_cert_expiry_timestamp_seconds',
      aggregator: 'min',
      help: 'NotAfter of the gRPC serving certificate, Unix seconds',
      registers,
    });
    this.csrCount = new Counter({ name: 'citadel_server_csr_count', help: 'The number of CSRs received (istiod parity)', registers });
    this.successCount = new Counter({
      name: 'citadel_server_success_cert_issuance_count',
      help: 'The number of certificates issued (istiod parity)',
      registers,
    });
    this.signErrCount = new Counter({
      name: 'citadel_server_csr_sign_err_count',
      help: 'The number of refused or failed CSRs (istiod parity)',
      labelNames: ['error'],
      registers,
    });
    this.authFailCount = new Counter({
      name: 'citadel_server_authentication_failure_count',
      help: 'The number of authentication failures (istiod parity)',
      registers,
    });
    this.citadelRootExpiry = new Gauge({
      name: 'citadel_server_root_cert_expiry_timestamp',
      aggregator: 'min',
      help: 'Unix timestamp at which the root expires (istiod parity)',
      registers,
    });
    this.citadelChainExpiry = new Gauge({
      name: 'citadel_server_cert_chain_expiry_timestamp',
      aggregator: 'min',
      help: 'Unix timestamp at which the CA chain expires (istiod parity)',
      registers,
    });
  }

  begin(): void {
    this.inflight.inc();
    this.csrCount.inc();
  }

  issued(r: { method: string; seconds: number }): void {
    this.inflight.dec();
    this.issuedTotal.inc({ method: r.method });
    this.successCount.inc();
    this.latency.observe({ outcome: 'issued' }, r.seconds);
  }

  refused(r: { reason: string; code: ErrorCode; seconds: number; authenticated: boolean }): void {
    this.inflight.dec();
    this.refusedTotal.inc({ reason: r.reason, code: r.code });
    this.signErrCount.inc({ error: r.reason });
    if (r.code === 'unauthenticated') this.authFailCount.inc();
    this.latency.observe({ outcome: 'refused' }, r.seconds);
  }

  suppressed(r: { reason: string }): void {
    this.auditSuppressed.inc({ reason: r.reason });
  }

  setHierarchy(cluster: string, chain: ParsedCertificate[], roots: ParsedCertificate[]): void {
    const secs = (d: Date) => Math.floor(d.getTime() / 1000);
    const rootAfter = Math.min(...roots.map((r) => secs(r.notAfter)));
    const chainAfter = Math.min(...chain.map((c) => secs(c.notAfter)));
    this.caExpiry.set({ cluster }, secs(chain[0].notAfter));
    this.caNotBefore.set({ cluster }, secs(chain[0].notBefore));
    this.rootExpiry.set(rootAfter);
    this.citadelRootExpiry.set(rootAfter);
    this.citadelChainExpiry.set(chainAfter);
  }

  setServingExpiry(notAfter: Date): void {
    this.servingExpiry.set(Math.floor(notAfter.getTime() / 1000));
  }
}
