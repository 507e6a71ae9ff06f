import type { IncomingHttpHeaders } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
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
import { malformed } from './fields.js';
import { H2Connection, type H2Request } from './http2/connection.js';

/** The 'frames' engine: meshca's own HTTP/2 framing (http2/connection.ts) on a TLS or TCP socket. */

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

export function framesServer(o: H2GrpcServerOptions): H2GrpcServer {
  const limits = connectionLimits(o.maxMessageBytes, o.limits);
  ensureBudgetFits(limits);
  const conns = new Set<H2Connection>();

  const responder = (c: H2Connection, req: H2Request): Responder => ({
    httpError: (status, extra = {}) => c.respond(req, [[':status', String(status)], ...Object.entries(extra)]),
    trailersOnly: (code, message, extra = []) =>
      c.respond(req, [
        [':status', '200'],
        ['content-type', 'application/grpc'],
        ['grpc-status', String(code)],
        ['grpc-message', encodeGrpcMessage(message)],
        ...extra,
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
