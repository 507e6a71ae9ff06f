import cluster, { type Worker } from 'node:cluster';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { Gauge, Registry } from 'prom-client';
import type { ServeConfig } from '../config/index.js';
import { MeshcaError } from '../pki/errors.js';
import { AUDIT_DONE, AUDIT_MESSAGE, fromWire, type AuditMessage } from './audit-relay.js';
import { startServer, type RunningServer, type StartOptions } from '../serve/index.js';
import { createLogger, grpcBindError, joinHostPort, splitHostPort } from './listen.js';

/**
 * Several processes for one CA, so that issuance uses every core: one process tops out well
 * below what the signing crypto of two cores allows. The primary bootstraps the CA (so workers
 * never race to create a root), serves HTTP and aggregates the workers' metrics, and relays the
 * workers' audit rows to its store (audit-relay.ts). Workers that die are replaced.
 *
 * The primary accepts the gRPC connections itself and hands each one to the
 * worker with the fewest open connections (ConnectionBalancer). node:cluster's round robin gives a
 * burst of connections to whichever worker acknowledges first: 8 connections opened together
 * were seen split 6/2 and 5/3, which saturated one worker while the other idled.
 */

const CONFIG_ENV = 'MESHCA_WORKER_CONFIG';
/** Primary -> worker: a gRPC connection (the socket travels as the message's handle). */
const CONN_MESSAGE = 'meshca:conn';
/** Worker -> primary: one of the handed-over connections closed. */
const CONN_CLOSED = 'meshca:conn-closed';

/** Least-connections choice among workers; ties go round the workers in turn. */
export class ConnectionBalancer<W> {
  private readonly open = new Map<W, number>();
  private turn = 0;

  add(w: W): void {
    if (!this.open.has(w)) this.open.set(w, 0);
  }

  remove(w: W): void {
    this.open.delete(w);
  }

  /** Picks the worker for a new connection and counts it there; undefined when there is none. */
  assign(): W | undefined {
    const all = [...this.open];
    if (all.length === 0) return undefined;
    let best: [W, number] | undefined;
    for (let i = 0; i < all.length; i++) {
      const c = all[(this.turn + i) % all.length];
      if (!best || c[1] < best[1]) best = c;
    }
    this.turn = (this.turn + 1) % all.length;
    this.open.set(best![0], best![1] + 1);
    return best![0];
  }

  closed(w: W): void {
    const n = this.open.get(w);
    if (n !== undefined && n > 0) this.open.set(w, n - 1);
  }

  entries(): [W, number][] {
    return [...this.open];
  }
}

/**
 * A small young generation for the gRPC workers: issuance allocates short-lived objects only, so
 * throughput stays and memory per process drops (docs/performance.md). A flag the operator gave wins.
 */
export const YOUNG_GENERATION_FLAG = '--max-semi-space-size=2';

/**
 * Garbage collection on each worker's own thread. The workers keep every core busy, so V8's
 * parallel and concurrent GC helper threads only preempt the other worker's event loop, and a
 * worker finishing a collection waits for helpers that are not running. A flag the operator gave wins.
 */
export const WORKER_GC_FLAG = '--single-threaded-gc';

/**
 * Room in the workers' old generation before the first mark-compact: left to itself V8 keeps the
 * limit just above what a worker holds live, and a busy worker then mark-compacts very often on its
 * one thread. The price is memory (each worker may hold that much garbage), which is why the
 * single-process default (`npm start`) does not take it. A heap size the operator gave wins.
 */
export const WORKER_OLD_SPACE_FLAG = '--initial-old-space-size=64';

/**
 * No allocation-site pretenuring in the workers. When most objects from an allocation site survive
 * a scavenge, as they do while a few hundred requests are in flight, V8 starts allocating that
 * site's objects in the old generation and never goes back; at a steady load many of each
 * request's objects then die there and feed the mark-compacts. One process (`npm start`, parallel
 * GC) did not gain, so only the workers take it. A flag the operator gave wins.
 */
export const WORKER_PRETENURING_FLAG = '--no-allocation-site-pretenuring';

/**
 * One V8 platform thread (node's default is four) for background compilation and what GC work is
 * left off the main thread: each of those threads keeps its own malloc arena, and throughput did
 * not move with one. `npm start` and the container image pass it to the primary too. A pool size
 * the operator gave wins.
 */
export const WORKER_POOL_FLAG = '--v8-pool-size=1';

/** The node flags `npm start` and the container image give `meshca serve` (the benchmarks start it so too). */
export const SERVE_NODE_FLAGS = [YOUNG_GENERATION_FLAG, WORKER_POOL_FLAG];

export function workerExecArgv(execArgv: string[], nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)];
  const out = [...execArgv];
  if (!given.some((a) => a.startsWith('--max-semi-space-size'))) out.push(YOUNG_GENERATION_FLAG);
  if (!given.some((a) => /^--(no-)?single-threaded(-gc)?$/.test(a))) out.push(WORKER_GC_FLAG);
  if (!given.some((a) => /^--(initial-old-space-size|initial-heap-size|max-old-space-size|max-heap-size)\b/.test(a)))
    out.push(WORKER_OLD_SPACE_FLAG);
  if (!given.some((a) => a.startsWith('--v8-pool-size'))) out.push(WORKER_POOL_FLAG);
  if (!given.some((a) => /^--(no-)?allocation-site-pretenuring$/.test(a))) out.push(WORKER_PRETENURING_FLAG);
  return out;
}
const SHUTDOWN_GRACE_MS = 15_000;

export function workerCount(config: Pick<ServeConfig, 'workers'>): number {
  return config.workers === 0 ? availableParallelism() : config.workers;
}

export function isClusterWorker(): boolean {
  return cluster.isWorker && process.env[CONFIG_ENV] !== undefined;
}

interface ReadyMessage {
  cmd?: string;
  event: 'ready' | 'failed';
  grpcPort?: number;
  message?: string;
}

export async function startCluster(config: ServeConfig, o: StartOptions & { logger: Logger }): Promise<RunningServer> {
  const log = o.logger;
  const workers = new Set<Worker>();
  // Only the primary talks to the upstream CA; after it renews the intermediate (and has persisted
  // it), each worker reloads the bundle from the state directory.
  const reloadWorkers = (): void => {
    for (const w of workers) if (w.isConnected()) w.send({ cmd: 'reload-ca' });
  };
  const balancer = new ConnectionBalancer<Worker>();
  const balancerMetrics = new Registry();
  new Gauge({
    name: 'meshca_grpc_worker_connections',
    help: 'gRPC connections the primary handed to each worker and still open (h2 transports)',
    labelNames: ['worker'],
    registers: [balancerMetrics],
    collect() {
      this.reset();
      for (const [w, n] of balancer.entries()) this.set({ worker: String(w.id) }, n);
    },
  });
  const primary = await startServer(config, { ...o, role: 'primary', onCaChanged: reloadWorkers, metricsRegistries: [balancerMetrics] });
  const n = workerCount(config);
  let stopping = false;
  // Workers neither serve the PCA API nor need its secrets in their environment.
  const workerConfig = JSON.stringify({ ...config, pcaApiAddr: undefined, pcaAccessKey: [], pcaAccessKeysFile: undefined });

  cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv) });
  const fork = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork({ [CONFIG_ENV]: workerConfig });
      workers.add(w);
      let ready = false;
      w.on('message', (m: ReadyMessage) => {
        if (m?.cmd === AUDIT_MESSAGE) {
          for (const row of (m as unknown as AuditMessage).rows) primary.appendAudit(fromWire(row));
          return;
        }
        if (m?.cmd === CONN_CLOSED) {
          balancer.closed(w);
          return;
        }
        if (m?.cmd === AUDIT_DONE) {
          w.emit('meshca-audit-done');
          return;
        }
        if (m?.event === 'ready' && m.grpcPort !== undefined) {
          ready = true;
          balancer.add(w);
          resolve(m.grpcPort);
        } else if (m?.event === 'failed') {
          reject(new MeshcaError('unavailable', 'worker_failed', `a gRPC worker could not start: ${m.message}`));
        }
      });
      // A message to a worker that is dying (a metrics scrape, a reload) fails with EPIPE or
      // ERR_IPC_CHANNEL_CLOSED as an 'error' event; unhandled, it would take the primary down too.
      w.on('error', (err) => log.warn({ err, pid: w.process.pid }, 'message to a gRPC worker failed'));
      w.once('exit', (code, signal) => {
        workers.delete(w);
        balancer.remove(w);
        if (!ready)
          return reject(new MeshcaError('unavailable', 'worker_failed', `a gRPC worker exited during start (code ${code ?? signal})`));
        if (stopping) return;
        log.error({ pid: w.process.pid, code, signal }, 'gRPC worker died; starting a replacement');
        setTimeout(() => void fork().catch((e: unknown) => log.error({ err: e }, 'replacement worker failed')), 500).unref();
      });
    });

  let grpcPort: number;
  let acceptor: NetServer | undefined;
  try {
    await Promise.all(Array.from({ length: n }, fork));
    acceptor = await listenAndHandOff(config.grpcAddr, balancer, log);
    grpcPort = (acceptor.address() as { port: number }).port;
  } catch (e) {
    stopping = true;
    for (const w of workers) w.kill();
    await primary.close();
    throw e;
  }
  const host = splitHostPort(config.grpcAddr).host;
  let closing: Promise<void> | undefined;
  const close = async () => {
    stopping = true;
    acceptor?.close();
    // Each worker finishes its in-flight calls and sends its queued audit rows (then a 'done'
    // marker, which the ordered channel delivers after every row) before exiting; the primary
    // writes them all before it closes its store.
    await Promise.all(
      [...workers].map(
        (w) =>
          new Promise<void>((resolve) => {
            let exited = false;
            let done = false;
            const t = setTimeout(() => w.kill('SIGKILL'), SHUTDOWN_GRACE_MS);
            const settle = () => {
              if (!exited || !done) return;
              clearTimeout(t);
              resolve();
            };
            w.once('meshca-audit-done', () => ((done = true), settle()));
            w.once('exit', () => {
              exited = true;
              // A worker killed before its marker has nothing more to deliver.
              setTimeout(() => ((done = true), settle()), 1000).unref();
              settle();
            });
            w.send({ cmd: 'shutdown' });
          }),
      ),
    );
    await primary.close();
  };
  return { ...primary, grpcPort, grpcAddress: joinHostPort(host, grpcPort), close: () => (closing ??= close()) };
}

/** The primary's gRPC listener: accepts without reading and hands each socket to a worker. */
function listenAndHandOff(addr: string, balancer: ConnectionBalancer<Worker>, log: Logger): Promise<NetServer> {
  const { host, port } = splitHostPort(addr);
  const server = createNetServer({ pauseOnConnect: true }, (socket: Socket) => {
    // A peer may reset before the hand-over; the worker owns every later error.
    socket.on('error', () => {});
    const w = balancer.assign();
    if (!w) {
      socket.destroy();
      return;
    }
    w.send({ cmd: CONN_MESSAGE }, socket, (err: Error | null) => {
      if (!err) return;
      log.warn({ err, pid: w.process.pid }, 'could not hand a gRPC connection to a worker; closing it');
      balancer.closed(w);
      socket.destroy();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(grpcBindError(addr, err)));
    server.listen(port, host, () => resolve(server));
  });
}

/** The worker side: gRPC only; stops when the primary says so or goes away. */
export async function runWorker(switches: Pick<StartOptions, 'audit' | 'renewalPauseMs'> = {}): Promise<void> {
  const config = JSON.parse(process.env[CONFIG_ENV]!) as ServeConfig;
  const log = createLogger(config.logLevel, config.logFormat).child({ worker: cluster.worker?.id });
  // Signals go to the whole process group; the primary coordinates the shutdown order.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  let server: RunningServer;
  try {
    server = await startServer(config, { ...switches, role: 'worker', logger: log, grpcHandedOff: true });
  } catch (e) {
    process.send?.({ event: 'failed', message: (e as Error).message } satisfies ReadyMessage);
    process.exit(1);
  }
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await server.close();
    process.exit(0);
  };
  process.on('message', (m: { cmd?: string }, handle?: unknown) => {
    if (m?.cmd === CONN_MESSAGE && handle) {
      const socket = handle as Socket;
      socket.once('close', () => {
        if (process.connected) process.send?.({ cmd: CONN_CLOSED });
      });
      if (stopping || !server.acceptConnection) socket.destroy();
      else server.acceptConnection(socket);
      return;
    }
    if (m?.cmd === 'shutdown') void stop();
    if (m?.cmd === 'reload-ca') server.reloadCa?.();
  });
  process.on('disconnect', () => void stop());
  process.send?.({ event: 'ready', grpcPort: server.grpcPort } satisfies ReadyMessage);
}
