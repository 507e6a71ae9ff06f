import {
  constants,
  createSecureServer,
  createServer,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Server as NetServer } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { GrpcStatus } from '../../errors.js';
import {
  connectionLimits,
  dispatch,
  encodeGrpcMessage,
  ensureBudgetFits,
  peerCertOfSocket,
  route,
  serverHandle,
  TLS_HANDSHAKE_TIMEOUT_MS,
  type H2GrpcServer,
  type H2GrpcServerOptions,
  type Responder,
} from './call.js';
import { fieldError } from './fields.js';
import { requestBudget, type BudgetMember } from './http2/budget.js';
import { DEFAULT_LIMITS, type ConnectionLimits } from './http2/connection.js';

/** The 'node' engine: node:http2 (nghttp2), held to the same limits and process budget as the frames engine. */

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

export function nodeServer(o: H2GrpcServerOptions): H2GrpcServer {
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
      trailersOnly: (code, message, extra = []) => {
        if (stream.destroyed || stream.headersSent) return;
        stream.respond(
          {
            ':status': 200,
            'content-type': 'application/grpc',
            'grpc-status': String(code),
            'grpc-message': encodeGrpcMessage(message),
            ...Object.fromEntries(extra),
          },
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
