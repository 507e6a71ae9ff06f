import { createServer } from 'node:net';
import { MeshcaError } from '../pki/errors.js';
import type { ServeConfig } from '../config/index.js';
import { splitHostPort } from './listen.js';

/**
 * Binds and at once releases each fixed address, so that a busy port stops `serve` before its
 * first start creates a root, an intermediate and a database. Port 0 is always free.
 */
export async function probeListenAddresses(
  config: Pick<ServeConfig, 'grpcAddr' | 'httpAddr' | 'pcaApiAddr'>,
  listens: { grpc: boolean; http: boolean },
): Promise<void> {
  const addrs = [
    listens.grpc && { what: 'gRPC', addr: config.grpcAddr },
    listens.http && { what: 'HTTP', addr: config.httpAddr },
    listens.http && !!config.pcaApiAddr && { what: 'the PCA API', addr: config.pcaApiAddr },
  ];
  for (const a of addrs) {
    if (!a) continue;
    const { host, port } = splitHostPort(a.addr);
    if (port === 0) continue;
    await new Promise<void>((resolve, reject) => {
      const s = createServer();
      s.once('error', (err) =>
        reject(
          new MeshcaError('unavailable', 'bind_failed', `cannot listen for ${a.what} on ${a.addr}: ${err.message} (nothing was created)`, {
            cause: err,
          }),
        ),
      );
      s.listen({ host, port, exclusive: true }, () => s.close(() => resolve()));
    });
  }
}
