import { createServer, type RequestListener, type Server } from 'node:http';

/**
 * The limits of meshca's two plain-HTTP listeners: the health/metrics/API/dashboard port and the
 * PCA-compatible API. Anything that can reach them is untrusted, so each limit bounds what one
 * client (or many) can make the process hold: sockets, bytes, time. Documented in SECURITY.md.
 */
export interface HttpLimits {
  /** Whole request headers must arrive within this (slowloris). */
  headersTimeoutMs: number;
  /** Whole request (headers and body) must arrive within this. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** How often node checks the two timeouts above; they can overrun by up to this much. */
  timeoutCheckIntervalMs: number;
  /** Request line plus headers; more is answered 431 by node itself. */
  maxHeaderBytes: number;
  /** Path plus query; longer is answered 414. */
  maxUrlBytes: number;
  /** Requests served on one keep-alive connection before node closes it. */
  maxRequestsPerSocket: number;
  /** Open connections; more are closed at once, so the port cannot exhaust file descriptors. */
  maxConnections: number;
}

export const HTTP_LIMITS: Readonly<HttpLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  timeoutCheckIntervalMs: 1_000,
  maxHeaderBytes: 16 * 1024,
  maxUrlBytes: 4 * 1024,
  maxRequestsPerSocket: 1_000,
  maxConnections: 1_000,
});

/** Largest PCA API request body: a CSR (even RSA-8192 with many SANs) is far below this. */
export const PCA_MAX_BODY_BYTES = 1 << 20;
/** Deepest JSON nesting accepted by the PCA API; its real requests nest three levels. */
export const PCA_MAX_JSON_DEPTH = 16;
/** Accepted difference between X-Amz-Date and the server clock; also bounds replays. */
export const SIGV4_MAX_SKEW_MS = 5 * 60_000;

/** A node:http server with the limits applied. */
export function createLimitedServer(listener: RequestListener, limits: HttpLimits = HTTP_LIMITS): Server {
  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: limits.timeoutCheckIntervalMs,
    },
    listener,
  );
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
  server.maxConnections = limits.maxConnections;
  return server;
}
