import { status as GrpcStatus } from '@grpc/grpc-js';
import { MeshcaError, type ErrorCode } from './pki/errors.js';

export { MeshcaError, isMeshcaError, invalid, errorMessage, type ErrorCode } from './pki/errors.js';

/** The one mapping from meshca error codes to gRPC status, HTTP status and CLI exit code. */
const TABLE: Record<ErrorCode, { grpc: GrpcStatus; http: number; exit: number }> = {
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

export function grpcStatusOf(e: unknown): GrpcStatus {
  return TABLE[toMeshcaError(e).code].grpc;
}

export function httpStatusOf(e: unknown): number {
  return TABLE[toMeshcaError(e).code].http;
}

export function exitCodeOf(e: unknown): number {
  return TABLE[toMeshcaError(e).code].exit;
}
