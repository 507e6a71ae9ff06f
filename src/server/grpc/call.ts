import type { IncomingHttpHeaders } from 'node:http2';
import type { Server as NetServer } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { gunzipSync } from 'node:zlib';
import { GrpcStatus, grpcStatusOf, toMeshcaError } from '../../errors.js';
import { MeshcaError } from '../../pki/errors.js';
import { requestBudget } from './http2/budget.js';
import { DEFAULT_LIMITS, type ConnectionLimits } from './http2/connection.js';

/**
 * What both HTTP/2 engines share: the server's types, the gRPC wire rules of a unary call
 * (route, unframe, dispatch), the client certificate of a TLS socket, and the server handle.
 */

export interface UnaryCall {
  message: Buffer;
  headers: IncomingHttpHeaders;
  /** DER of the client certificate, only when it verified against the server's client CAs. */
  peerCertDer?: Buffer;
  peer: string;
}

export type UnaryHandler = (call: UnaryCall) => Buffer | Promise<Buffer>;

export interface TlsMaterial {
  cert: string;
  key: string;
  /** CAs that client certificates must chain to; a client without a certificate is still admitted. */
  ca: string;
}

export type H2Engine = 'frames' | 'node';

export interface H2GrpcServerOptions {
  routes: Record<string, UnaryHandler>;
  maxMessageBytes: number;
  tls?: TlsMaterial;
  onError?: (e: unknown) => void;
  engine?: H2Engine;
  /** Overrides of the connection limits and deadlines (both engines honour the ones they can). */
  limits?: Partial<ConnectionLimits>;
}

export interface H2GrpcServer {
  server: NetServer;
  listen(host: string, port: number): Promise<number>;
  updateTls(t: TlsMaterial): void;
  /** Sends GOAWAY, lets in-flight calls finish for up to graceMs, then cuts the rest. */
  close(graceMs?: number): Promise<void>;
}

/** Time a client has to finish the TLS handshake (tls.Server's default is two minutes). */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** The connection limits of a server: the defaults, sized for its largest message, and overrides. */
export function connectionLimits(maxMessageBytes: number, overrides: Partial<ConnectionLimits> = {}): ConnectionLimits {
  const maxBodyBytes = maxMessageBytes + 5;
  return { ...DEFAULT_LIMITS, maxBodyBytes, maxBufferedBytes: Math.max(DEFAULT_LIMITS.maxBufferedBytes, 2 * maxBodyBytes), ...overrides };
}

/** A large maximum message needs room in the process budget for a few such requests at once. */
export function ensureBudgetFits(limits: ConnectionLimits): void {
  requestBudget.limit = Math.max(requestBudget.limit, 2 * limits.maxBodyBytes);
}

/** grpc-message is percent-encoded: bytes outside printable ASCII, and '%' itself. */
export function encodeGrpcMessage(s: string): string {
  let out = '';
  for (const b of Buffer.from(s))
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** How the shared gRPC logic answers, whatever the engine. */
export interface Responder {
  httpError(status: number, extra?: Record<string, string>): void;
  /** `extra`: more trailers, such as grpc-retry-pushback-ms. */
  trailersOnly(code: number, message: string, extra?: [string, string][]): void;
  /** A framed gRPC message, then trailers grpc-status 0. */
  reply(framed: Buffer): void;
}

/** Checks the call's headers; undefined when the call was answered (refused) here. */
export function route(o: H2GrpcServerOptions, headers: IncomingHttpHeaders, r: Responder): UnaryHandler | undefined {
  if (headers[':method'] !== 'POST') {
    r.httpError(405, { allow: 'POST' });
    return undefined;
  }
  const ct = String(headers['content-type'] ?? '');
  if (ct !== 'application/grpc' && !ct.startsWith('application/grpc+proto') && !ct.startsWith('application/grpc;')) {
    r.httpError(415);
    return undefined;
  }
  const handler = o.routes[String(headers[':path'])];
  if (!handler) {
    r.trailersOnly(GrpcStatus.UNIMPLEMENTED, `unknown method ${String(headers[':path'])}`);
    return undefined;
  }
  const enc = headers['grpc-encoding'] as string | undefined;
  if (enc !== undefined && enc !== 'identity' && enc !== 'gzip') {
    r.trailersOnly(GrpcStatus.UNIMPLEMENTED, `message encoding ${enc} is not supported (identity, gzip)`);
    return undefined;
  }
  return handler;
}

/** Runs a routed call on its whole body and answers it. */
export function dispatch(
  o: H2GrpcServerOptions,
  handler: UnaryHandler,
  call: Omit<UnaryCall, 'message'>,
  body: Buffer,
  r: Responder,
): void {
  const fail = (e: unknown) => {
    const err = toMeshcaError(e);
    if (err.code === 'internal' && err.reason === 'internal') o.onError?.(e);
    r.trailersOnly(
      grpcStatusOf(err),
      err.message,
      err.retryAfterMs === undefined ? undefined : [['grpc-retry-pushback-ms', String(err.retryAfterMs)]],
    );
  };
  const reply = (msg: Buffer) => {
    // One buffer, so the message goes out as one DATA frame (one TLS record) rather than two.
    const framed = Buffer.allocUnsafe(5 + msg.length);
    framed[0] = 0;
    framed.writeUInt32BE(msg.length, 1);
    msg.copy(framed, 5);
    r.reply(framed);
  };
  try {
    const full = call as UnaryCall;
    full.message = unframe(body, call.headers['grpc-encoding'] as string | undefined, o.maxMessageBytes);
    const res = handler(full);
    // A synchronous answer is sent at once: no promise hop on the hot path.
    if (Buffer.isBuffer(res)) reply(res);
    else res.then(reply, fail);
  } catch (e) {
    fail(e);
  }
}

/** The client certificate of a TLS connection, when it verified against the server's client CAs. */
export function peerCertOfSocket(sock: TLSSocket): Buffer | undefined {
  return typeof sock.getPeerCertificate === 'function' && sock.authorized ? (sock.getPeerCertificate().raw ?? undefined) : undefined;
}

/** Unpacks the single length-prefixed message of a unary call. */
function unframe(body: Buffer, encoding: string | undefined, max: number): Buffer {
  if (body.length < 5) throw new MeshcaError('internal', 'bad_frame', 'request body is shorter than a gRPC message header');
  const compressed = body[0];
  const len = body.readUInt32BE(1);
  if (len > max)
    throw new MeshcaError('resource_exhausted', 'message_too_large', `request message of ${len} bytes exceeds the ${max}-byte limit`);
  if (body.length !== 5 + len) throw new MeshcaError('internal', 'bad_frame', 'a unary call must carry exactly one complete message');
  const msg = body.subarray(5);
  if (compressed === 0) return msg;
  if (compressed !== 1 || encoding !== 'gzip')
    throw new MeshcaError('internal', 'bad_frame', 'compressed message without a supported grpc-encoding');
  const out = gunzipSync(msg, { maxOutputLength: max });
  return out;
}

/**
 * The engine-independent handle: listen, swap the TLS material, and close gracefully (the engine
 * tells its connections to finish, then cuts what is left after graceMs).
 */
export function serverHandle(server: NetServer, conns: { shutdown(): void; destroy(): void }): H2GrpcServer {
  return {
    server,
    listen: (host, port) =>
      new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const a = server.address();
          resolve(typeof a === 'object' && a ? a.port : port);
        });
      }),
    updateTls: (t) => (server as unknown as { setSecureContext(o: object): void }).setSecureContext({ cert: t.cert, key: t.key, ca: t.ca }),
    close: (graceMs = 5000) =>
      new Promise((resolve) => {
        server.close(() => resolve());
        conns.shutdown();
        setTimeout(() => conns.destroy(), graceMs).unref();
      }),
  };
}
