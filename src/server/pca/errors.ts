import { MeshcaError, type ErrorCode } from '../../pki/errors.js';

const CODES: Record<string, ErrorCode> = {
  ResourceNotFoundException: 'not_found',
  RequestInProgressException: 'unavailable',
  ThrottlingException: 'resource_exhausted',
  LimitExceededException: 'resource_exhausted',
  InvalidStateException: 'failed_precondition',
  InvalidSignatureException: 'unauthenticated',
  UnrecognizedClientException: 'unauthenticated',
  IncompleteSignatureException: 'unauthenticated',
  MissingAuthenticationTokenException: 'unauthenticated',
  InternalFailure: 'internal',
};

/**
 * An error in the ACM PCA wire shape: HTTP 400 (403 for a missing signature) with
 * {"__type": awsType, "message": ...}. Also a MeshcaError, so code outside the transport can treat
 * it like any other.
 */
export class PcaError extends MeshcaError {
  constructor(
    readonly awsType: string,
    message: string,
    readonly httpStatus = 400,
  ) {
    super(CODES[awsType] ?? 'invalid_argument', awsType, message);
  }
}

export const pcaErr = {
  notFound: (m: string) => new PcaError('ResourceNotFoundException', m),
  invalidArn: (m: string) => new PcaError('InvalidArnException', m),
  invalidArgs: (m: string) => new PcaError('InvalidArgsException', m),
  invalidRequest: (m: string) => new PcaError('InvalidRequestException', m),
  validation: (m: string) => new PcaError('ValidationException', m),
  malformedCsr: (m: string) => new PcaError('MalformedCSRException', m),
  inProgress: (m: string) => new PcaError('RequestInProgressException', m),
  throttling: () => new PcaError('ThrottlingException', 'Rate exceeded'),
};
