import { Counter, Gauge, Registry } from 'prom-client';

/**
 * Metrics of the upstream CA, in their own registry: they live in the process that talks to the
 * upstream (the primary with --workers, whose own registry is not part of the workers' aggregate),
 * so /metrics appends this registry's text to whatever it serves.
 */
export class UpstreamMetrics {
  readonly registry = new Registry();
  private readonly errors: Counter<'type' | 'reason'>;
  private readonly renewals: Counter;

  constructor(
    private readonly type: string,
    remainingSeconds: () => number | undefined,
  ) {
    const registers = [this.registry];
    new Gauge({
      name: 'meshca_intermediate_remaining_seconds',
      help: 'Seconds of life left in the issuing CA certificate from the upstream (0 once expired)',
      registers,
      // Read at scrape time, so the value is current even while the upstream is unreachable.
      collect() {
        const s = remainingSeconds();
        if (s !== undefined) this.set(s);
      },
    });
    this.errors = new Counter({
      name: 'meshca_upstream_errors_total',
      help: 'Failed calls to the upstream CA (after retries), by upstream type and reason',
      labelNames: ['type', 'reason'],
      registers,
    });
    this.renewals = new Counter({
      name: 'meshca_intermediate_renewals_total',
      help: 'Intermediates obtained from the upstream CA',
      registers,
    });
  }

  error(reason: string): void {
    this.errors.inc({ type: this.type, reason });
  }

  renewed(): void {
    this.renewals.inc();
  }
}
