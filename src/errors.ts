/**
 * gRPC status codes (fixed by the gRPC spec). Kept here rather than imported from grpc-js so that
 * processes which never speak grpc-js (the CLI, the default HTTP/2 transport) do not load it.
 */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus];
import { MeshcaError, type ErrorCode } from './pki/errors.js';

export { MeshcaError, isMeshcaError, invalid, errorMessage, type ErrorCode } from './pki/errors.js';

/** The one mapping from meshca error codes to gRPC status, HTTP status and CLI exit code. */
const TABLE: Record<ErrorCode, { grpc: GrpcStatusCode; http: number; exit: number }> = {
  invalid_argument: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400, exit: 2 },
  unauthenticated: { grpc: GrpcStatus.UNAUTHENTICATED, http: 401, exit: 6 },
  permission_denied: { grpc: GrpcStatus.PERMISSION_DENIED, http: 403, exit: 6 },
  not_found: { grpc: GrpcStatus.NOT_FOUND, http: 404, exit: 3 },
  already_exists: { grpc: GrpcStatus.ALREADY_EXISTS, http: 409, exit: 4 },
  failed_precondition: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 412, exit: 5 },
  resource_exhausted: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, http: 429, exit: 7 },
  unavailable: { grpc: GrpcStatus.UNAVAILABLE, http: 503, exit: 7 },
  deadline_exceeded: { grpc: GrpcStatus.DEADLINE_EXCEEDED, http: 504, exit: 7 },
  internal: { grpc: GrpcStatus.INTERNAL, http: 500, exit: 1 },
};

export function toMeshcaError(e: unknown): MeshcaError {
  if (e instanceof MeshcaError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new MeshcaError('internal', 'internal', msg, { cause: e });
}

export function grpcStatusOf(e: unknown): GrpcStatusCode {
  return TABLE[toMeshcaError(e).code].grpc;
}

export function httpStatusOf(e: unknown): number {
  return TABLE[toMeshcaError(e).code].http;
}

export function exitCodeOf(e: unknown): number {
  return TABLE[toMeshcaError(e).code].exit;
}
