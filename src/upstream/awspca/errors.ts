import { MeshcaError, type ErrorCode } from '../../pki/errors.js';

/** Names PCA (and the AWS SDK) use for "slow down". LimitExceededException is a quota, but it clears like a rate limit. */
const THROTTLING = new Set([
  'ThrottlingException',
  'LimitExceededException',
  'TooManyRequestsException',
  'Throttling',
  'ThrottledException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ProvisionedThroughputExceededException',
]);

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
  'ENETDOWN',
  'UND_ERR_SOCKET',
]);

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $fault?: string;
}

function shape(e: unknown): SdkErrorShape {
  return (e && typeof e === 'object' ? e : {}) as SdkErrorShape;
}

export function errorName(e: unknown): string {
  return shape(e).name ?? 'Error';
}

export function isThrottling(e: unknown): boolean {
  const s = shape(e);
  return THROTTLING.has(s.name ?? '') || s.$metadata?.httpStatusCode === 429;
}

/** Transport failures where the request may or may not have reached PCA: safe to retry only with the same token. */
export function isNetworkError(e: unknown): boolean {
  const s = shape(e);
  if (NETWORK_CODES.has(s.code ?? '') || NETWORK_CODES.has(s.name ?? '')) return true;
  if (s.name === 'TimeoutError' || s.name === 'RequestTimeout' || s.name === 'AbortError') return s.$metadata === undefined;
  // Node's fetch/undici and socket errors carry the code on `cause`.
  const cause = (e as { cause?: unknown } | undefined)?.cause;
  return cause !== undefined && cause !== e && NETWORK_CODES.has(shape(cause).code ?? '');
}

export function isServerFault(e: unknown): boolean {
  const s = shape(e);
  const status = s.$metadata?.httpStatusCode ?? 0;
  return status >= 500 || s.name === 'InternalFailure' || s.name === 'ServiceUnavailable';
}

export function isTransient(e: unknown): boolean {
  return isThrottling(e) || isNetworkError(e) || isServerFault(e);
}

const CODES: Record<string, ErrorCode> = {
  ResourceNotFoundException: 'not_found',
  InvalidArnException: 'invalid_argument',
  InvalidArgsException: 'invalid_argument',
  MalformedCSRException: 'invalid_argument',
  InvalidRequestException: 'invalid_argument',
  ValidationException: 'invalid_argument',
  InvalidStateException: 'failed_precondition',
  RequestFailedException: 'failed_precondition',
  AccessDeniedException: 'permission_denied',
  UnrecognizedClientException: 'unauthenticated',
  InvalidSignatureException: 'unauthenticated',
  InvalidClientTokenId: 'unauthenticated',
  ExpiredTokenException: 'unauthenticated',
  MissingAuthenticationTokenException: 'unauthenticated',
  CredentialsProviderError: 'unauthenticated',
};

/** Turns an SDK failure into meshca's error, naming the operation and the CA. */
export function pcaError(e: unknown, operation: string, arn: string): MeshcaError {
  if (e instanceof MeshcaError) return e;
  const s = shape(e);
  const name = s.name ?? 'Error';
  const detail = s.message ? `${name}: ${s.message}` : name;
  let code: ErrorCode = CODES[name] ?? 'internal';
  if (isThrottling(e)) code = 'resource_exhausted';
  else if (isNetworkError(e) || isServerFault(e)) code = 'unavailable';
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(s.message ?? '')) code = 'unauthenticated';
  const reason = `awspca_${name
    .replace(/Exception$/, '')
    .replace(/[^A-Za-z0-9]+/g, '_')
    .toLowerCase()}`;
  return new MeshcaError(code, reason, `AWS Private CA ${operation} on ${arn} failed: ${detail}`, { cause: e });
}
