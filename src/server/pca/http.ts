import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { errorMessage } from '../../pki/errors.js';
import { PcaError } from './errors.js';
import type { PcaService } from './service.js';
import { verifySigV4 } from './sigv4.js';

const TARGET_PREFIX = 'ACMPrivateCA.';
const MAX_BODY = 1 << 20;

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

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new PcaError('SerializationException', `request body exceeds ${MAX_BODY} bytes`, 413));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, requestId: string, errorType?: string): void {
  const data = Buffer.from(JSON.stringify(body));
  const headers: Record<string, string | number> = {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': data.length,
    'x-amzn-requestid': requestId,
  };
  if (errorType) headers['x-amzn-errortype'] = errorType;
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
    void (async () => {
      try {
        if (req.method !== 'POST') throw new PcaError('UnknownOperationException', `${req.method} is not supported; the API takes POST / with X-Amz-Target`, 404);
        const body = await readBody(req);
        const target = req.headers['x-amz-target'];
        if (typeof target !== 'string' || !target.startsWith(TARGET_PREFIX)) {
          throw new PcaError('UnknownOperationException', `X-Amz-Target must be ${TARGET_PREFIX}<Operation>`);
        }
        record.operation = target.slice(TARGET_PREFIX.length);
        if (o.secrets.size > 0) {
          record.accessKeyId = verifySigV4(
            { method: req.method, url: req.url ?? '/', rawHeaders: req.rawHeaders, body },
            { service: 'acm-pca', region: o.service.scope.region, now: now(), secrets: o.secrets },
          );
        }
        const type = String(req.headers['content-type'] ?? '');
        if (!type.startsWith('application/x-amz-json-')) {
          throw new PcaError('SerializationException', `Content-Type must be application/x-amz-json-1.1, not "${type}"`);
        }
        let input: unknown;
        try {
          input = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
        } catch {
          throw new PcaError('SerializationException', 'the request body is not valid JSON');
        }
        if (!input || typeof input !== 'object' || Array.isArray(input)) throw new PcaError('SerializationException', 'the request body must be a JSON object');
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
    })();
  };
}
