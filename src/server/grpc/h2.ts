import type { H2GrpcServer, H2GrpcServerOptions } from './call.js';
import { framesServer } from './frames-engine.js';
import { nodeServer } from './node-engine.js';

export {
  connectionLimits,
  encodeGrpcMessage,
  type H2Engine,
  type H2GrpcServer,
  type H2GrpcServerOptions,
  type TlsMaterial,
  type UnaryCall,
  type UnaryHandler,
} from './call.js';
export { fieldError } from './fields.js';
export { nodeH2ServerOptions } from './node-engine.js';

/**
 * A gRPC unary server for meshca's one hot method, on one of two HTTP/2 engines:
 * - 'frames' (default): meshca's own HTTP/2 framing on a TLS socket (frames-engine.ts);
 * - 'node': node:http2 (nghttp2) (node-engine.ts).
 * The own framing is the default because it takes a fraction of node:http2's CPU per request.
 * The gRPC wire rules (the same on both engines, in call.ts): POST only (else HTTP 405),
 * content-type application/grpc[+proto] (else 415), one length-prefixed message, identity or gzip
 * message encoding (else UNIMPLEMENTED), size limit (RESOURCE_EXHAUSTED), unknown paths
 * (UNIMPLEMENTED), errors as trailers-only responses with a percent-encoded grpc-message.
 * grpc-timeout is not enforced: a unary call here finishes at once unless it waits on an
 * upstream, which has its own timeout.
 */
export function createH2GrpcServer(o: H2GrpcServerOptions): H2GrpcServer {
  return (o.engine ?? 'frames') === 'frames' ? framesServer(o) : nodeServer(o);
}
