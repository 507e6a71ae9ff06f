import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Metrics of a material source that renews the cluster intermediate inside `meshca serve` (an
 * upstream intermediate, the replicated CA): when the current intermediate enters its renewal
 * window, and the renewal attempts that failed. Both are for alerts (deploy/prometheus/); nothing
 * here runs per request: the window is read at scrape time.
 */
export class RenewalMetrics {
  private readonly failures: Counter<'cluster'>;

  constructor(
    registers: Registry[],
    private readonly cluster: string,
    renewFrom: () => Date | undefined,
  ) {
    new Gauge({
      name: 'meshca_ca_cert_renewal_timestamp_seconds',
      help: 'Start of the renewal window of the issuing intermediate (NotAfter minus renewBefore), Unix seconds; only where meshca serve renews it',
      labelNames: ['cluster'],
      registers,
      collect() {
        const at = renewFrom();
        if (at) this.set({ cluster }, Math.floor(at.getTime() / 1000));
      },
    });
    this.failures = new Counter({
      name: 'meshca_intermediate_renewal_failures_total',
      help: 'Failed attempts to renew the cluster intermediate (each retry counts); the reason is logged and shown in /readyz',
      labelNames: ['cluster'],
      registers,
    });
    // Present at 0 from the start, so the first failure is an increase Prometheus can see.
    this.failures.inc({ cluster }, 0);
  }

  failed(): void {
    this.failures.inc({ cluster: this.cluster });
  }
}
