/**
 * One error type for the whole program. The code is mapped once to gRPC status,
 * HTTP status and CLI exit code (see src/errors.ts); the message names the
 * field or certificate at fault so that an operator can act on it.
 */
export type ErrorCode =
  | 'invalid_argument'
  | 'unauthenticated'
  | 'permission_denied'
  | 'not_found'
  | 'already_exists'
  | 'failed_precondition'
  | 'resource_exhausted'
  | 'unavailable'
  | 'deadline_exceeded'
  | 'internal';

export class MeshcaError extends Error {
  readonly code: ErrorCode;
  /** Short machine-readable reason, used as a metrics label and in the audit log. */
  readonly reason: string;
  /** When a retry may succeed (a budget refills): sent to gRPC clients as grpc-retry-pushback-ms. */
  readonly retryAfterMs?: number;
  constructor(code: ErrorCode, reason: string, message: string, options?: { cause?: unknown; retryAfterMs?: number }) {
    super(message, options);
    this.name = 'MeshcaError';
    this.code = code;
    this.reason = reason;
    if (options?.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

export function invalid(reason: string, message: string, cause?: unknown): MeshcaError {
  return new MeshcaError('invalid_argument', reason, message, cause === undefined ? undefined : { cause });
}

export function isMeshcaError(e: unknown): e is MeshcaError {
  return e instanceof MeshcaError;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
