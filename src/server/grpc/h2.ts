import {
  constants,
  createSecureServer,
  createServer,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { gunzipSync } from 'node:zlib';
import { GrpcStatus, grpcStatusOf, toMeshcaError } from '../../errors.js';
import { MeshcaError } from '../../pki/errors.js';
import { requestBudget, type BudgetMember } from './http2/budget.js';
import { DEFAULT_LIMITS, H2Connection, type ConnectionLimits, type H2Request } from './http2/connection.js';

/**
 * A gRPC unary server for meshca's one hot method, on one of two HTTP/2 engines:
 * - 'frames' (default): meshca's own HTTP/2 framing on a TLS socket (http2/connection.ts);
 * - 'node': node:http2 (nghttp2).
 * The own framing is the default because it takes a fraction of node:http2's CPU per request.
 * The gRPC wire rules
 * (the same on both engines): POST only (else HTTP 405), content-type application/grpc[+proto]
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

/** Time a client has to finish the TLS handshake (tls.Server's default is two minutes). */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** The connection limits of a server: the defaults, sized for its largest message, and overrides. */
export function connectionLimits(maxMessageBytes: number, overrides: Partial<ConnectionLimits> = {}): ConnectionLimits {
  const maxBodyBytes = maxMessageBytes + 5;
  return { ...DEFAULT_LIMITS, maxBodyBytes, maxBufferedBytes: Math.max(DEFAULT_LIMITS.maxBufferedBytes, 2 * maxBodyBytes), ...overrides };
}

/**
 * node:http2's own limits for the 'node' engine, matching the frames engine's.
 * maxSessionMemory is in megabytes.
 */
export function nodeH2ServerOptions(limits: ConnectionLimits = DEFAULT_LIMITS) {
  return {
    maxSettings: limits.maxSettingsEntries,
    maxSessionMemory: Math.max(1, Math.ceil(limits.maxBufferedBytes / (1024 * 1024))),
    // A CA request carries about ten fields.
    maxHeaderListPairs: 128,
    maxOutstandingPings: 10,
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    unknownProtocolTimeout: limits.handshakeTimeoutMs,
    // The server opens no streams (no push); this only bounds what it would accept to open.
    peerMaxConcurrentStreams: 100,
    settings: { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderListSize, enablePush: false },
  };
}

export interface H2GrpcServer {
  server: NetServer;
  listen(host: string, port: number): Promise<number>;
  updateTls(t: TlsMaterial): void;
  /** Sends GOAWAY, lets in-flight calls finish for up to graceMs, then cuts the rest. */
  close(graceMs?: number): Promise<void>;
}

/** grpc-message is percent-encoded: bytes outside printable ASCII, and '%' itself. */
export function encodeGrpcMessage(s: string): string {
  let out = '';
  for (const b of Buffer.from(s))
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** How the shared gRPC logic answers, whatever the engine. */
interface Responder {
  httpError(status: number, extra?: Record<string, string>): void;
  trailersOnly(code: number, message: string): void;
  /** A framed gRPC message, then trailers grpc-status 0. */
  reply(framed: Buffer): void;
}

/** Checks the call's headers; undefined when the call was answered (refused) here. */
function route(o: H2GrpcServerOptions, headers: IncomingHttpHeaders, r: Responder): UnaryHandler | undefined {
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
function dispatch(o: H2GrpcServerOptions, handler: UnaryHandler, call: Omit<UnaryCall, 'message'>, body: Buffer, r: Responder): void {
  const fail = (e: unknown) => {
    const err = toMeshcaError(e);
    if (err.code === 'internal' && err.reason === 'internal') o.onError?.(e);
    r.trailersOnly(grpcStatusOf(err), err.message);
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
function peerCertOfSocket(sock: TLSSocket): Buffer | undefined {
  return typeof sock.getPeerCertificate === 'function' && sock.authorized ? (sock.getPeerCertificate().raw ?? undefined) : undefined;
}

const peerCerts = new WeakMap<Http2Session, Buffer | null>();

/** The verified client certificate of a session, read once per connection. */
function peerCertOf(session: Http2Session | undefined): Buffer | undefined {
  if (!session) return undefined;
  let der = peerCerts.get(session);
  if (der === undefined) {
    der = peerCertOfSocket(session.socket as TLSSocket) ?? null;
    peerCerts.set(session, der);
  }
  return der ?? undefined;
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

export function createH2GrpcServer(o: H2GrpcServerOptions): H2GrpcServer {
  return (o.engine ?? 'frames') === 'frames' ? framesServer(o) : nodeServer(o);
}

/**
 * The engine-independent handle: listen, swap the TLS material, and close gracefully (the engine
 * tells its connections to finish, then cuts what is left after graceMs).
 */
function serverHandle(server: NetServer, conns: { shutdown(): void; destroy(): void }): H2GrpcServer {
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

const GRPC_OK: ReadonlyArray<readonly [string, string]> = [['grpc-status', '0']];
const RESPONSE_HEADERS: ReadonlyArray<readonly [string, string]> = [
  [':status', '200'],
  ['content-type', 'application/grpc'],
];

/** The request's header list as node:http2 would give it: duplicates (but for pseudo-headers) as arrays. */
function headerRecord(list: ReadonlyArray<readonly [string, string]>): IncomingHttpHeaders {
  const h: Record<string, string | string[]> = {};
  for (const [n, v] of list) {
    const had = h[n];
    if (had === undefined) h[n] = v;
    else if (n[0] !== ':') h[n] = Array.isArray(had) ? [...had, v] : [had, v];
  }
  return h as IncomingHttpHeaders;
}

/** Octets of a header name: RFC 9110 token characters, lowercase only (RFC 9113 8.2.1). */
const NAME_OCTET = (() => {
  const t = new Uint8Array(256);
  for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") t[c.charCodeAt(0)] = 1;
  return t;
})();

/**
 * RFC 9113 8.2.1-8.2.2 for one field: a name of lowercase token characters (after the ':' of a
 * pseudo-header), a value without NUL, CR or LF and without leading or trailing space or tab, and
 * `te` only as "trailers". A char-code loop: it runs for every field of every request.
 */
export function fieldError(n: string, v: string): string | undefined {
  const nl = n.length;
  if (nl === 0) return 'empty header name';
  for (let i = n.charCodeAt(0) === 0x3a ? 1 : 0; i < nl; i++) {
    const c = n.charCodeAt(i);
    if (c > 0xff || NAME_OCTET[c] === 0) return 'header name with a character outside lowercase token characters';
  }
  const vl = v.length;
  if (vl > 0) {
    const a = v.charCodeAt(0);
    const z = v.charCodeAt(vl - 1);
    if (a === 0x20 || a === 0x09 || z === 0x20 || z === 0x09) return 'header value with leading or trailing whitespace';
    for (let i = 0; i < vl; i++) {
      const c = v.charCodeAt(i);
      if (c === 0x00 || c === 0x0a || c === 0x0d) return 'header value with NUL, CR or LF';
    }
  }
  if (nl === 2 && n === 'te' && v !== 'trailers') return 'te other than trailers';
  return undefined;
}

/** RFC 9113 8.2-8.3: valid fields, pseudo-headers first and known, the request pseudo-headers present once. */
function malformed(list: ReadonlyArray<readonly [string, string]>): string | undefined {
  let regular = false;
  const seen = new Set<string>();
  for (const [n, v] of list) {
    const bad = fieldError(n, v);
    if (bad) return bad;
    if (n[0] === ':') {
      if (regular) return `pseudo-header ${n} after a regular header`;
      if (n !== ':method' && n !== ':path' && n !== ':scheme' && n !== ':authority') return `unknown pseudo-header ${n}`;
      if (seen.has(n)) return `pseudo-header ${n} repeated`;
      seen.add(n);
    } else {
      regular = true;
      if (n === 'connection' || n === 'keep-alive' || n === 'proxy-connection' || n === 'transfer-encoding' || n === 'upgrade')
        return `connection-specific header ${n}`;
    }
  }
  if (!seen.has(':method') || !seen.has(':path') || !seen.has(':scheme')) return 'missing :method, :path or :scheme';
  return undefined;
}

function framesServer(o: H2GrpcServerOptions): H2GrpcServer {
  const limits = connectionLimits(o.maxMessageBytes, o.limits);
  ensureBudgetFits(limits);
  const conns = new Set<H2Connection>();

  const responder = (c: H2Connection, req: H2Request): Responder => ({
    httpError: (status, extra = {}) => c.respond(req, [[':status', String(status)], ...Object.entries(extra)]),
    trailersOnly: (code, message) =>
      c.respond(req, [
        [':status', '200'],
        ['content-type', 'application/grpc'],
        ['grpc-status', String(code)],
        ['grpc-message', encodeGrpcMessage(message)],
      ]),
    reply: (framed) => c.respond(req, RESPONSE_HEADERS, framed, GRPC_OK),
  });

  const handlers = {
    onRequest(c: H2Connection, req: H2Request) {
      const r = responder(c, req);
      const bad = malformed(req.headers);
      if (bad) return c.resetStream(req.id, 1 /* PROTOCOL_ERROR */);
      const headers = headerRecord(req.headers);
      const handler = route(o, headers, r);
      if (!handler) return;
      if (c.peerCertDer === undefined) c.peerCertDer = peerCertOfSocket(c.socket as unknown as TLSSocket) ?? null;
      dispatch(o, handler, { headers, peerCertDer: c.peerCertDer ?? undefined, peer: c.peer }, req.body, r);
    },
    onTooLarge(c: H2Connection, req: H2Request) {
      responder(c, req).trailersOnly(GrpcStatus.RESOURCE_EXHAUSTED, `request message exceeds the ${o.maxMessageBytes}-byte limit`);
    },
    onHeadersTooLarge(c: H2Connection, req: H2Request) {
      responder(c, req).httpError(431);
    },
    onClose(c: H2Connection) {
      conns.delete(c);
    },
  };

  const accept = (sock: Socket) => {
    // Several calls share a connection: without TCP_NODELAY a small answer can wait for the
    // peer's delayed ACK (Nagle), which shows as milliseconds of latency under concurrency.
    sock.setNoDelay(true);
    const c = new H2Connection(sock, handlers, limits);
    // Known before the first request: the process budget sheds unauthenticated streams first.
    if (o.tls) c.peerCertDer = peerCertOfSocket(sock as TLSSocket) ?? null;
    conns.add(c);
  };
  let server: NetServer;
  if (o.tls) {
    server = createTlsServer(
      {
        cert: o.tls.cert,
        key: o.tls.key,
        ca: o.tls.ca,
        requestCert: true,
        rejectUnauthorized: false,
        ALPNProtocols: ['h2'],
        handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
      },
      (sock: TLSSocket) => {
        // gRPC is HTTP/2 only; a client that did not negotiate h2 gets nothing (as node:http2 without allowHTTP1).
        if (sock.alpnProtocol !== 'h2') return sock.destroy();
        accept(sock);
      },
    );
    server.on('tlsClientError', () => {});
  } else {
    server = createNetServer(accept);
  }
  return serverHandle(server, {
    shutdown: () => conns.forEach((c) => c.shutdown()),
    destroy: () => conns.forEach((c) => c.destroy()),
  });
}

/** A large maximum message needs room in the process budget for a few such requests at once. */
function ensureBudgetFits(limits: ConnectionLimits): void {
  requestBudget.limit = Math.max(requestBudget.limit, 2 * limits.maxBodyBytes);
}

/** A request of the 'node' engine being received, charged to the process budget. */
interface NodeCall {
  stream: ServerHttp2Stream;
  seq: number;
  born: number;
  charged: number;
  authenticated: boolean;
  /** The request is complete (END_STREAM): no longer a candidate for shedding or the request deadline. */
  done: boolean;
}

/**
 * The 'node' engine's share of the process budget and of the deadlines: its requests, in arrival
 * order, and its sessions until their SETTINGS arrive.
 */
class NodeCalls implements BudgetMember {
  readonly calls = new Set<NodeCall>();
  readonly unsettled = new Map<Http2Session, number>();
  private target: NodeCall | undefined;

  constructor(private readonly limits: ConnectionLimits) {}

  oldest(authenticated: boolean): number {
    this.target = undefined;
    for (const c of this.calls) {
      if (!c.done && c.charged > 0 && (authenticated || !c.authenticated)) {
        this.target = c;
        return c.seq;
      }
    }
    return Infinity;
  }

  shedOldest(): void {
    const c = this.target;
    this.target = undefined;
    if (c) this.drop(c, constants.NGHTTP2_REFUSED_STREAM);
  }

  sweep(now: number): void {
    for (const c of this.calls) if (!c.done && now - c.born > this.limits.requestTimeoutMs) this.drop(c, constants.NGHTTP2_CANCEL);
    for (const [session, born] of this.unsettled) {
      if (now - born > this.limits.handshakeTimeoutMs) {
        this.unsettled.delete(session);
        session.destroy();
      }
    }
  }

  charge(c: NodeCall, n: number): void {
    c.charged += n;
    requestBudget.charge(n);
  }

  release(c: NodeCall): void {
    if (!this.calls.delete(c)) return;
    requestBudget.release(c.charged);
    c.charged = 0;
  }

  private drop(c: NodeCall, code: number): void {
    this.release(c);
    if (!c.stream.destroyed) c.stream.close(code);
  }
}

function nodeServer(o: H2GrpcServerOptions): H2GrpcServer {
  const limits = connectionLimits(o.maxMessageBytes, o.limits);
  ensureBudgetFits(limits);
  const options = nodeH2ServerOptions(limits);
  const server = o.tls
    ? createSecureServer({
        ...options,
        cert: o.tls.cert,
        key: o.tls.key,
        ca: o.tls.ca,
        requestCert: true,
        rejectUnauthorized: false,
        allowHTTP1: false,
        handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
      })
    : createServer(options);
  server.on(o.tls ? 'secureConnection' : 'connection', (sock: { setNoDelay(v: boolean): void }) => sock.setNoDelay(true));
  const sessions = new Set<Http2Session>();
  const calls = new NodeCalls(limits);
  server.on('session', (s: Http2Session) => {
    if (sessions.size === 0) requestBudget.join(calls);
    sessions.add(s);
    // A client that never sends its preface and SETTINGS is cut by the sweep.
    calls.unsettled.set(s, requestBudget.now);
    s.once('remoteSettings', () => calls.unsettled.delete(s));
    s.setTimeout(limits.idleTimeoutMs, () => s.close());
    s.once('close', () => {
      calls.unsettled.delete(s);
      sessions.delete(s);
      if (sessions.size === 0) requestBudget.leave(calls);
    });
    s.on('error', () => {});
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders?: string[]) => {
    stream.on('error', () => {});
    // nghttp2 checks most of RFC 9113 8.2 itself; this covers what it lets through.
    let headerBytes = 0;
    if (rawHeaders) {
      for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
        if (fieldError(rawHeaders[i], rawHeaders[i + 1])) return stream.close(constants.NGHTTP2_PROTOCOL_ERROR);
        headerBytes += rawHeaders[i].length + rawHeaders[i + 1].length + 32;
      }
    }
    const r: Responder = {
      httpError: (status, extra = {}) => {
        if (stream.destroyed || stream.headersSent) return;
        stream.respond({ ':status': status, ...extra }, { endStream: true });
      },
      trailersOnly: (code, message) => {
        if (stream.destroyed || stream.headersSent) return;
        stream.respond(
          { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(message) },
          { endStream: true },
        );
      },
      reply: (framed) => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(framed);
      },
    };
    const handler = route(o, headers, r);
    if (!handler) return;
    const call: NodeCall = {
      stream,
      seq: requestBudget.nextSeq(),
      born: requestBudget.now,
      charged: 0,
      authenticated: peerCertOf(stream.session) !== undefined,
      done: false,
    };
    calls.calls.add(call);
    stream.once('close', () => calls.release(call));
    calls.charge(call, headerBytes);
    if (!calls.calls.has(call)) return; // shed by the process budget
    const limit = limits.maxBodyBytes;
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    stream.on('data', (c: Buffer) => {
      if (tooLarge || !calls.calls.has(call)) return;
      size += c.length;
      if (size > limit) {
        tooLarge = true;
        calls.release(call);
        r.trailersOnly(GrpcStatus.RESOURCE_EXHAUSTED, `request message exceeds the ${o.maxMessageBytes}-byte limit`);
        stream.close(constants.NGHTTP2_CANCEL);
        return;
      }
      calls.charge(call, c.length);
      if (!calls.calls.has(call)) return; // shed by the process budget
      chunks.push(c);
    });
    stream.on('end', () => {
      call.done = true;
      if (tooLarge || stream.destroyed || !calls.calls.has(call)) return;
      const session = stream.session;
      const sock = session?.socket;
      dispatch(
        o,
        handler,
        { headers, peerCertDer: peerCertOf(session), peer: `${sock?.remoteAddress ?? '?'}:${sock?.remotePort ?? '?'}` },
        chunks.length === 1 ? chunks[0] : Buffer.concat(chunks),
        r,
      );
    });
  });

  return serverHandle(server as unknown as NetServer, {
    shutdown: () => sessions.forEach((x) => x.close()),
    destroy: () => sessions.forEach((x) => x.destroy()),
  });
}
