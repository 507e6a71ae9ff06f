import { Counter, Gauge, Registry } from 'prom-client';

/**
 * Metrics of the process that serves /metrics (the single process, or the primary of --workers),
 * in their own registry appended to what /metrics serves: the primary's leadership and its own
 * audit writes are not part of the workers' aggregate. Read at scrape time or counted on rare
 * failures, never per request.
 */
export class ControlMetrics {
  readonly registry = new Registry();
  private readonly auditFailures: Counter;
  private leading: () => boolean | undefined = () => undefined;

  constructor(cluster: string) {
    const registers = [this.registry];
    // Arrow functions cannot be collect(): prom-client calls it with the gauge as `this`.
    const leading = () => this.leading();
    new Gauge({
      name: 'meshca_leader',
      help: 'Whether this process leads (runs renewals and controllers): 1 or 0; replicas of one CA share the cluster label',
      labelNames: ['cluster'],
      registers,
      collect() {
        const l = leading();
        if (l !== undefined) this.set({ cluster }, l ? 1 : 0);
      },
    });
    this.auditFailures = new Counter({
      name: 'meshca_audit_write_failures_total',
      help: 'Failed writes of queued audit rows to the store (the rows stay queued and are retried)',
      registers,
    });
  }

  /** Where leadership is read from once it is known (it starts after the transports). */
  setLeadership(isLeader: () => boolean | undefined): void {
    this.leading = isLeader;
  }

  auditWriteFailed(): void {
    this.auditFailures.inc();
  }
}
