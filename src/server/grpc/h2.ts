import { constants, createSecureServer, createServer, type Http2Server, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { gunzipSync } from 'node:zlib';
import { GrpcStatus, grpcStatusOf, toMeshcaError } from '../../errors.js';
import { MeshcaError } from '../../pki/errors.js';

/**
 * A gRPC unary server on bare node:http2, for meshca's one hot method. Measured on this machine
 * (TLS, 64 calls in flight, a no-op handler answering 1.5 KB): grpc-js costs about 90-120 µs of
 * server CPU per call, this transport 50-60 µs, @connectrpc/connect-node about 600 µs. The gRPC
 * wire rules it implements: POST only (else HTTP 405), content-type application/grpc[+proto]
 * (else 415), one length-prefixed message, identity or gzip message encoding (else UNIMPLEMENTED),
 * size limit (RESOURCE_EXHAUSTED), unknown paths (UNIMPLEMENTED), errors as trailers-only
 * responses with a percent-encoded grpc-message. grpc-timeout is not enforced: a unary call here
 * finishes in microseconds unless it waits on an upstream, which has its own timeout.
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

export interface H2GrpcServerOptions {
  routes: Record<string, UnaryHandler>;
  maxMessageBytes: number;
  tls?: TlsMaterial;
  onError?: (e: unknown) => void;
}

export interface H2GrpcServer {
  server: Http2Server;
  listen(host: string, port: number): Promise<number>;
  updateTls(t: TlsMaterial): void;
  /** Sends GOAWAY, lets in-flight calls finish for up to graceMs, then cuts the rest. */
  close(graceMs?: number): Promise<void>;
}

/** grpc-message is percent-encoded: bytes outside printable ASCII, and '%' itself. */
export function encodeGrpcMessage(s: string): string {
  let out = '';
  for (const b of Buffer.from(s)) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

function trailersOnly(stream: ServerHttp2Stream, code: number, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) }, { endStream: true });
}

function httpError(stream: ServerHttp2Stream, status: number, extra: Record<string, string> = {}): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': status, ...extra }, { endStream: true });
}

const peerCerts = new WeakMap<Http2Session, Buffer | null>();

/** The verified client certificate of a session, read once per connection. */
function peerCertOf(session: Http2Session | undefined): Buffer | undefined {
  if (!session) return undefined;
  let der = peerCerts.get(session);
  if (der === undefined) {
    const sock = session.socket as TLSSocket;
    der = typeof sock.getPeerCertificate === 'function' && sock.authorized ? sock.getPeerCertificate().raw ?? null : null;
    peerCerts.set(session, der);
  }
  return der ?? undefined;
}

/** Unpacks the single length-prefixed message of a unary call. */
function unframe(body: Buffer, encoding: string | undefined, max: number): Buffer {
  if (body.length < 5) throw new MeshcaError('internal', 'bad_frame', 'request body is shorter than a gRPC message header');
  const compressed = body[0];
  const len = body.readUInt32BE(1);
  if (len > max) throw new MeshcaError('resource_exhausted', 'message_too_large', `request message of ${len} bytes exceeds the ${max}-byte limit`);
  if (body.length !== 5 + len) throw new MeshcaError('internal', 'bad_frame', 'a unary call must carry exactly one complete message');
  const msg = body.subarray(5);
  if (compressed === 0) return msg;
  if (compressed !== 1 || encoding !== 'gzip') throw new MeshcaError('internal', 'bad_frame', 'compressed message without a supported grpc-encoding');
  const out = gunzipSync(msg, { maxOutputLength: max });
  return out;
}

export function createH2GrpcServer(o: H2GrpcServerOptions): H2GrpcServer {
  const settings = { maxConcurrentStreams: 1000 };
  const server: Http2Server = o.tls
    ? createSecureServer({ cert: o.tls.cert, key: o.tls.key, ca: o.tls.ca, requestCert: true, rejectUnauthorized: false, settings, allowHTTP1: false })
    : createServer({ settings });
  // Several calls share a connection: without TCP_NODELAY a small answer can wait for the peer's
  // delayed ACK (Nagle), which shows as milliseconds of latency under concurrency. Set on the raw
  // socket: an HTTP/2 session's socket proxy refuses it.
  server.on(o.tls ? 'secureConnection' : 'connection', (sock: { setNoDelay(v: boolean): void }) => sock.setNoDelay(true));
  const sessions = new Set<Http2Session>();
  server.on('session', (s: Http2Session) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
    s.on('error', () => {});
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on('error', () => {});
    if (headers[':method'] !== 'POST') return httpError(stream, 405, { allow: 'POST' });
    const ct = String(headers['content-type'] ?? '');
    if (ct !== 'application/grpc' && !ct.startsWith('application/grpc+proto') && !ct.startsWith('application/grpc;')) return httpError(stream, 415);
    const handler = o.routes[String(headers[':path'])];
    if (!handler) return trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `unknown method ${String(headers[':path'])}`);
    const enc = headers['grpc-encoding'] as string | undefined;
    if (enc !== undefined && enc !== 'identity' && enc !== 'gzip') {
      return trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `message encoding ${enc} is not supported (identity, gzip)`);
    }
    const limit = o.maxMessageBytes + 5;
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    stream.on('data', (c: Buffer) => {
      if (tooLarge) return;
      size += c.length;
      if (size > limit) {
        tooLarge = true;
        trailersOnly(stream, GrpcStatus.RESOURCE_EXHAUSTED, `request message exceeds the ${o.maxMessageBytes}-byte limit`);
        stream.close(constants.NGHTTP2_CANCEL);
        return;
      }
      chunks.push(c);
    });
    stream.on('end', () => {
      if (tooLarge || stream.destroyed) return;
      const session = stream.session;
      const sock = session?.socket;
      const call: UnaryCall = {
        message: Buffer.alloc(0),
        headers,
        peerCertDer: peerCertOf(session),
        peer: `${sock?.remoteAddress ?? '?'}:${sock?.remotePort ?? '?'}`,
      };
      const fail = (e: unknown) => {
        const err = toMeshcaError(e);
        if (err.code === 'internal' && err.reason === 'internal') o.onError?.(e);
        trailersOnly(stream, grpcStatusOf(err), err.message);
      };
      const reply = (msg: Buffer) => {
        if (stream.destroyed) return;
        // One buffer, so the message goes out as one DATA frame (one TLS record) rather than two.
        const framed = Buffer.allocUnsafe(5 + msg.length);
        framed[0] = 0;
        framed.writeUInt32BE(msg.length, 1);
        msg.copy(framed, 5);
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(framed);
      };
      try {
        call.message = unframe(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), enc, o.maxMessageBytes);
        const r = handler(call);
        // A synchronous answer is sent at once: no promise hop on the hot path.
        if (Buffer.isBuffer(r)) reply(r);
        else r.then(reply, fail);
      } catch (e) {
        fail(e);
      }
    });
  });

  return {
    server,
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const a = server.address();
          resolve(typeof a === 'object' && a ? a.port : port);
        });
      }),
    updateTls: (t) => {
      (server as unknown as { setSecureContext(o: object): void }).setSecureContext({ cert: t.cert, key: t.key, ca: t.ca });
    },
    close: (graceMs = 5000) =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.close();
        setTimeout(() => {
          for (const s of sessions) s.destroy();
        }, graceMs).unref();
      }),
  };
}
