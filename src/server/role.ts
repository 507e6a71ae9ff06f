/**
 * What a `meshca serve` process is: one process serving everything (single), or with --workers
 * the primary (HTTP, PCA API, controllers, the upstream) and its workers (gRPC only).
 */
export type ServerRole = 'single' | 'primary' | 'worker';

/** What runs in a process of a role, decided once so that the composition root does not branch on it. */
export interface RolePlan {
  /** Serves gRPC itself (the primary hands connections to its workers instead). */
  grpc: boolean;
  /** HTTP (health, metrics, API, dashboard) and the PCA API. */
  http: boolean;
  /** Competes for leadership and runs the controllers (Kubernetes, declarative); prepares the Kubernetes state. */
  controllers: boolean;
  /** Where /metrics comes from: this process, the aggregate of its workers, or the primary asks over IPC. */
  metrics: 'own' | 'aggregate' | 'ipc';
  /** Hands audit rows to the primary, the one SQLite writer. */
  relayAudit: boolean;
}

export function planFor(role: ServerRole): RolePlan {
  const worker = role === 'worker';
  return {
    grpc: role !== 'primary',
    http: !worker,
    controllers: !worker,
    metrics: worker ? 'ipc' : role === 'primary' ? 'aggregate' : 'own',
    relayAudit: worker,
  };
}
