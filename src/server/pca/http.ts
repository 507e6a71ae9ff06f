import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { errorMessage } from '../../pki/errors.js';
import { PCA_MAX_BODY_BYTES, PCA_MAX_JSON_DEPTH } from '../http/limits.js';
import { PcaError } from './errors.js';
import type { PcaService } from './service.js';
import { checkSigV4Headers, verifySigV4, type SigV4Options } from './sigv4.js';

const TARGET_PREFIX = 'ACMPrivateCA.';

/** One line per call, for logs and for tests that count retries and tokens. */
export interface PcaCallRecord {
  operation: string;
  status: number;
  errorType?: string;
  accessKeyId?: string;
  idempotencyToken?: string;
  certificateArn?: string;
  requestId: string;
}

export interface PcaHttpOptions {
  service: PcaService;
  /** Access key id -> secret. Empty means no authentication (only allowed on loopback with --pca-insecure). */
  secrets: ReadonlyMap<string, string>;
  now?: () => Date;
  onCall?: (record: PcaCallRecord) => void;
}

const tooLarge = () => new PcaError('SerializationException', `request body exceeds ${PCA_MAX_BODY_BYTES} bytes`, 413);

/**
 * The body, up to PCA_MAX_BODY_BYTES: a larger Content-Length is refused before reading, and a
 * chunked body stops being read once it passes the limit (the reply then closes the connection).
 */
function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > PCA_MAX_BODY_BYTES) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > PCA_MAX_BODY_BYTES) {
        req.off('data', onData);
        req.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * Whether JSON nests deeper than max, counted without parsing: JSON.parse copes with deep nesting,
 * but whatever walks the result afterwards (JSON.stringify of the input, for instance) recurses.
 */
export function jsonNestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

function send(res: ServerResponse, status: number, body: unknown, requestId: string, errorType?: string): void {
  const data = Buffer.from(JSON.stringify(body));
  const headers: Record<string, string | number> = {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': data.length,
    'x-amzn-requestid': requestId,
  };
  if (errorType) headers['x-amzn-errortype'] = errorType;
  // An unread body (too large, or refused before reading) must not be read for the next request.
  if (status === 413 || !res.req.complete) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(data);
}

/**
 * The AWS JSON 1.1 transport of ACM PCA: POST / with X-Amz-Target ACMPrivateCA.<Operation>, SigV4
 * (service acm-pca) checked against the configured keys, errors as HTTP 4xx {"__type","message"}.
 */
export function pcaRequestListener(o: PcaHttpOptions): RequestListener {
  const now = o.now ?? (() => new Date());
  return (req, res) => {
    const requestId = randomUUID();
    const record: PcaCallRecord = { operation: '', status: 200, requestId };
    const sigv4 = (): SigV4Options => ({
      service: 'acm-pca',
      region: o.service.scope.region,
      now: now(),
      secrets: o.secrets,
      mustSign: ['x-amz-target'],
    });
    const handle = async (): Promise<void> => {
      try {
        if (req.method !== 'POST')
          throw new PcaError('UnknownOperationException', `${req.method} is not supported; the API takes POST / with X-Amz-Target`, 404);
        // Refused on its headers alone (no key, stale date, ...) before a byte of the body is read.
        if (o.secrets.size > 0) checkSigV4Headers({ method: req.method, url: req.url ?? '/', rawHeaders: req.rawHeaders }, sigv4());
        const body = await readBody(req);
        if (o.secrets.size > 0) {
          record.accessKeyId = verifySigV4({ method: req.method, url: req.url ?? '/', rawHeaders: req.rawHeaders, body }, sigv4());
        }
        const target = req.headers['x-amz-target'];
        if (typeof target !== 'string' || !target.startsWith(TARGET_PREFIX)) {
          throw new PcaError('UnknownOperationException', `X-Amz-Target must be ${TARGET_PREFIX}<Operation>`);
        }
        record.operation = target.slice(TARGET_PREFIX.length);
        const type = String(req.headers['content-type'] ?? '');
        if (!type.startsWith('application/x-amz-json-')) {
          throw new PcaError('SerializationException', `Content-Type must be application/x-amz-json-1.1, not "${type.slice(0, 100)}"`);
        }
        const text = body.toString('utf8');
        if (jsonNestsDeeperThan(text, PCA_MAX_JSON_DEPTH))
          throw new PcaError('SerializationException', `the request body nests deeper than ${PCA_MAX_JSON_DEPTH} levels`);
        let input: unknown;
        try {
          input = body.length === 0 ? {} : JSON.parse(text);
        } catch {
          throw new PcaError('SerializationException', 'the request body is not valid JSON');
        }
        if (!input || typeof input !== 'object' || Array.isArray(input))
          throw new PcaError('SerializationException', 'the request body must be a JSON object');
        const tok = (input as Record<string, unknown>).IdempotencyToken;
        if (typeof tok === 'string') record.idempotencyToken = tok;
        const out = o.service.handle(record.operation, input as Record<string, unknown>);
        const arn = (out as { CertificateArn?: unknown }).CertificateArn;
        if (typeof arn === 'string') record.certificateArn = arn;
        send(res, 200, out, requestId);
      } catch (e) {
        const err = e instanceof PcaError ? e : new PcaError('InternalFailure', `internal error: ${errorMessage(e)}`, 500);
        record.status = err.httpStatus;
        record.errorType = err.awsType;
        send(res, err.httpStatus, { __type: err.awsType, message: err.message }, requestId, err.awsType);
      } finally {
        o.onCall?.(record);
      }
    };
    // The last line of defence: a throw while answering (or in onCall) must not end the process.
    handle().catch(() => {
      if (!res.headersSent) send(res, 500, { __type: 'InternalFailure', message: 'internal error' }, requestId, 'InternalFailure');
      else res.destroy();
    });
  };
}
