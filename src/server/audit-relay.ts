import { DEFAULT_AUDIT_FLUSH_MS, type AuditEntry, type Store } from '../store/index.js';
import { overrideStore } from '../store/override.js';

/**
 * Audit rows of `--workers` processes on the embedded (SQLite) store go to the primary over the
 * cluster's IPC channel, and the primary alone writes them. With every worker writing the shared
 * database itself, two writers contend for SQLite's single write lock: the loser's busy handler
 * sleeps (1, 2, 5 ms...) on the event loop that serves gRPC, and each process pays the per-commit
 * and checkpoint cost of its own small batches. Serializing a batch for IPC costs a worker far less
 * than inserting it. PostgreSQL takes concurrent writers, so workers there write directly.
 *
 * No row is lost on a clean shutdown: a worker's close() sends what is queued and then a 'done'
 * marker; the primary, which reads the channel in order, waits for that marker before it closes
 * its own store (cluster.ts). A killed worker loses at most its last flushMs of rows, as a killed
 * single process loses its unflushed queue.
 */

export const AUDIT_MESSAGE = 'meshca-audit';
export const AUDIT_DONE = 'meshca-audit-done';

/** An audit row as it crosses the channel: times as epoch milliseconds. */
type WireRow = [
  number,
  AuditEntry['outcome'],
  string,
  string,
  string,
  string,
  string,
  string | null,
  string | null,
  number | null,
  number | null,
  string | null,
];

function toWire(e: AuditEntry): WireRow {
  return [
    e.time.getTime(),
    e.outcome,
    e.reason,
    e.identity,
    e.caller,
    e.method,
    e.cluster,
    e.clientCluster ?? null,
    e.serial ?? null,
    e.notBefore?.getTime() ?? null,
    e.notAfter?.getTime() ?? null,
    e.message ?? null,
  ];
}

export function fromWire(r: WireRow): AuditEntry {
  const e: AuditEntry = { time: new Date(r[0]), outcome: r[1], reason: r[2], identity: r[3], caller: r[4], method: r[5], cluster: r[6] };
  if (r[7] !== null) e.clientCluster = r[7];
  if (r[8] !== null) e.serial = r[8];
  if (r[9] !== null) e.notBefore = new Date(r[9]);
  if (r[10] !== null) e.notAfter = new Date(r[10]);
  if (r[11] !== null) e.message = r[11];
  return e;
}

export interface AuditMessage {
  cmd: typeof AUDIT_MESSAGE;
  rows: WireRow[];
}

type Send = (m: object, cb: (err: Error | null) => void) => boolean;

/** The worker's store: every method of the real store, but audit rows are relayed to the primary. */
export function relayAudit(store: Store, send: Send, o: { flushMs?: number; batchSize?: number } = {}): Store {
  // serve passes --audit-flush-ms, the store's own interval: a killed worker loses what a killed
  // single process would. Each message wakes the primary and each batch is a commit there, so a
  // shorter interval costs the primary CPU (docs/performance.md).
  const flushMs = o.flushMs ?? DEFAULT_AUDIT_FLUSH_MS;
  const batchSize = o.batchSize ?? 500;
  let queue: WireRow[] = [];
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  let closed = false;

  const flushNow = (): Promise<void> => {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (queue.length === 0) return inFlight;
    const rows = queue;
    queue = [];
    const sent = new Promise<void>((resolve, reject) => {
      send({ cmd: AUDIT_MESSAGE, rows } satisfies AuditMessage, (err) => (err ? reject(err) : resolve()));
    });
    inFlight = inFlight.then(() => sent);
    return inFlight;
  };

  const appendAudit = (entry: AuditEntry) => {
    if (closed) throw new Error('the store is closed');
    queue.push(toWire(entry));
    if (queue.length >= batchSize) void flushNow().catch(() => {});
    else if (!timer) {
      timer = setTimeout(() => void flushNow().catch(() => {}), flushMs);
      timer.unref();
    }
  };
  const close = async () => {
    if (!closed) {
      closed = true;
      await flushNow();
      await new Promise<void>((resolve, reject) => send({ cmd: AUDIT_DONE }, (err) => (err ? reject(err) : resolve())));
    }
    await store.close();
  };
  // Everything else is the real store's.
  return overrideStore(store, { appendAudit, flush: flushNow, close, pendingAudit: () => queue.length });
}
