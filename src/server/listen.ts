import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { MeshcaError } from '../pki/errors.js';
import { resolveLogFormat, textDestination } from './log-text.js';

export function createLogger(level: string, format?: string): Logger {
  // Logs go to stderr so that stdout carries only the one-line "listening" record a script parses.
  const dest = resolveLogFormat(format) === 'text' ? textDestination() : pino.destination({ dest: 2, sync: true });
  return pino({ level, base: { name: 'meshca' } }, dest);
}

/** The one refusal for a gRPC address that cannot be bound (here, and by the primary of --workers). */
export function grpcBindError(addr: string, err: Error): MeshcaError {
  return new MeshcaError('unavailable', 'bind_failed', `cannot listen for gRPC on ${addr}: ${err.message}`, { cause: err });
}

export function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(addr.slice(i + 1)) };
}

export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Binds an HTTP server to host:port; `close` stops accepting and drops idle keep-alive connections. */
export async function listenHttp(http: HttpServer, addr: string): Promise<{ port: number; close: () => Promise<void> }> {
  const { host, port } = splitHostPort(addr);
  await new Promise<void>((resolve, reject) => {
    http.once('error', (err) =>
      reject(new MeshcaError('unavailable', 'bind_failed', `cannot listen for HTTP on ${addr}: ${err.message}`, { cause: err })),
    );
    http.listen(port, host, () => resolve());
  });
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      http.close(() => resolve());
      http.closeIdleConnections();
    });
  return { port: (http.address() as AddressInfo).port, close };
}
