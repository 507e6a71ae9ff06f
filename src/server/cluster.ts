import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { ServeConfig } from '../config/index.js';
import { MeshcaError } from '../pki/errors.js';
import { AUDIT_DONE, AUDIT_MESSAGE, fromWire, type AuditMessage } from './audit-relay.js';
import { createLogger, startServer, type RunningServer, type StartOptions } from './index.js';

/**
 * Several processes for one CA, so that issuance uses every core: one grpc-js process tops out
 * well below what the signing crypto of two cores allows. The primary bootstraps the CA (so workers
 * never race to create a root), serves HTTP and aggregates the workers' metrics; each worker serves
 * gRPC on the shared port (node:cluster hands out connections round-robin) and writes its own
 * batched audit rows to the shared SQLite database (WAL). Workers that die are replaced.
 */

const CONFIG_ENV = 'MESHCA_WORKER_CONFIG';

/**
 * V8's young generation for the gRPC workers: 2 MB semi-spaces instead of up to 16 MB. Issuance
 * allocates short-lived objects only; measured with `npm run bench`, throughput is the same and a
 * process serving 1,000 connections needs about 25 MB less. A flag the operator gave wins.
 */
export const YOUNG_GENERATION_FLAG = '--max-semi-space-size=2';

export function workerExecArgv(execArgv: string[], nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => a.startsWith('--max-semi-space-size'));
  return given ? execArgv : [...execArgv, YOUNG_GENERATION_FLAG];
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
  const primary = await startServer(config, { ...o, role: 'primary', onCaChanged: reloadWorkers });
  const n = workerCount(config);
  let stopping = false;
  // Workers neither serve the PCA API nor need its secrets in their environment.
  const workerConfig = JSON.stringify({ ...config, pcaApi: undefined, pcaAccessKey: [], pcaAccessKeysFile: undefined });

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
        if (m?.cmd === AUDIT_DONE) {
          w.emit('meshca-audit-done');
          return;
        }
        if (m?.event === 'ready' && m.grpcPort) {
          ready = true;
          resolve(m.grpcPort);
        } else if (m?.event === 'failed') {
          reject(new MeshcaError('unavailable', 'worker_failed', `a gRPC worker could not start: ${m.message}`));
        }
      });
      w.once('exit', (code, signal) => {
        workers.delete(w);
        if (!ready) return reject(new MeshcaError('unavailable', 'worker_failed', `a gRPC worker exited during start (code ${code ?? signal})`));
        if (stopping) return;
        log.error({ pid: w.process.pid, code, signal }, 'gRPC worker died; starting a replacement');
        setTimeout(() => void fork().catch((e: unknown) => log.error({ err: e }, 'replacement worker failed')), 500).unref();
      });
    });

  let ports: number[];
  try {
    ports = await Promise.all(Array.from({ length: n }, fork));
  } catch (e) {
    stopping = true;
    for (const w of workers) w.kill();
    await primary.close();
    throw e;
  }
  const host = config.grpcAddr.slice(0, config.grpcAddr.lastIndexOf(':'));
  let closing: Promise<void> | undefined;
  const close = async () => {
    stopping = true;
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
  return { ...primary, grpcPort: ports[0], grpcAddress: `${host}:${ports[0]}`, close: () => (closing ??= close()) };
}

/** The worker side: gRPC only; stops when the primary says so or goes away. */
export async function runWorker(): Promise<void> {
  const config = JSON.parse(process.env[CONFIG_ENV]!) as ServeConfig;
  const log = createLogger(config.logLevel).child({ worker: cluster.worker?.id });
  // Signals go to the whole process group; the primary coordinates the shutdown order.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  let server: RunningServer;
  try {
    server = await startServer(config, { role: 'worker', logger: log });
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
  process.on('message', (m: { cmd?: string }) => {
    if (m?.cmd === 'shutdown') void stop();
    if (m?.cmd === 'reload-ca') server.reloadCa?.();
  });
  process.on('disconnect', () => void stop());
  process.send?.({ event: 'ready', grpcPort: server.grpcPort } satisfies ReadyMessage);
}
