import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { SIGV4_MAX_SKEW_MS } from '../http/limits.js';
import { PcaError } from './errors.js';

/**
 * AWS Signature Version 4 verification (the signing side is the AWS SDK or CLI). Follows the
 * published algorithm: canonical request -> string to sign -> HMAC key derived from the secret,
 * date, region and service; compared in constant time.
 */
export interface SigV4Request {
  method: string;
  /** Path and query as received ("/", "/?a=b"). */
  url: string;
  /** Node's rawHeaders: [name, value, name, value, ...], duplicates preserved. */
  rawHeaders: string[];
  body: Buffer;
}

export interface SigV4Options {
  service: string;
  region: string;
  now: Date;
  /** Access key id -> secret access key. */
  secrets: ReadonlyMap<string, string>;
  /** Accepted clock difference (default SIGV4_MAX_SKEW_MS); it also bounds how late a captured request can be replayed. */
  maxSkewMs?: number;
  /** Headers that must be signed besides host and x-amz-date (the PCA API adds x-amz-target). */
  mustSign?: string[];
}

const ALGORITHM = 'AWS4-HMAC-SHA256';

function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** RFC 3986 unreserved characters stay, everything else is %XX (upper case), as SigV4 requires. */
export function uriEscape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, '%20'));
  } catch {
    return s;
  }
}

/** Non-S3 services: each path segment is normalised and URI-encoded twice. */
function canonicalUri(path: string): string {
  const segments: string[] = [];
  for (const seg of path.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') segments.pop();
    else segments.push(seg);
  }
  const trailing = path.endsWith('/') && segments.length > 0 ? '/' : '';
  return `/${segments.map((s) => uriEscape(uriEscape(safeDecode(s)))).join('/')}${trailing}`;
}

function canonicalQuery(query: string): string {
  if (!query) return '';
  const pairs = query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const i = p.indexOf('=');
      const k = i < 0 ? p : p.slice(0, i);
      const v = i < 0 ? '' : p.slice(i + 1);
      return [uriEscape(safeDecode(k)), uriEscape(safeDecode(v))] as const;
    })
    .filter(([k]) => k !== 'X-Amz-Signature');
  pairs.sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function headerValues(rawHeaders: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    const list = m.get(name) ?? [];
    list.push(rawHeaders[i + 1].trim().replace(/\s+/g, ' '));
    m.set(name, list);
  }
  return m;
}

export interface ParsedAuthorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

const incomplete = (m: string) => new PcaError('IncompleteSignatureException', m);

export function parseAuthorization(value: string): ParsedAuthorization {
  if (!value.startsWith(`${ALGORITHM} `)) {
    throw incomplete(`Authorization header requires the ${ALGORITHM} algorithm; got "${value.split(' ')[0]}"`);
  }
  const parts = new Map<string, string>();
  for (const p of value.slice(ALGORITHM.length).split(',')) {
    const i = p.indexOf('=');
    if (i > 0) parts.set(p.slice(0, i).trim(), p.slice(i + 1).trim());
  }
  for (const k of ['Credential', 'SignedHeaders', 'Signature']) {
    if (!parts.get(k)) throw incomplete(`Authorization header requires '${k}' parameter.`);
  }
  const cred = parts.get('Credential')!.split('/');
  if (cred.length !== 5 || cred[4] !== 'aws4_request') {
    throw incomplete(`Credential "${parts.get('Credential')}" must be <AccessKeyId>/<date>/<region>/<service>/aws4_request`);
  }
  return {
    accessKeyId: cred[0],
    date: cred[1],
    region: cred[2],
    service: cred[3],
    signedHeaders: parts.get('SignedHeaders')!.split(';'),
    signature: parts.get('Signature')!,
  };
}

function parseAmzDate(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
}

export function canonicalRequest(req: SigV4Request, signedHeaders: string[]): string {
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const query = q < 0 ? '' : req.url.slice(q + 1);
  const headers = headerValues(req.rawHeaders);
  const lines = signedHeaders.map((h) => `${h}:${(headers.get(h) ?? []).join(',')}\n`).join('');
  return [req.method.toUpperCase(), canonicalUri(path), canonicalQuery(query), lines, signedHeaders.join(';'), sha256Hex(req.body)].join(
    '\n',
  );
}

/** Headers whose second copy would make the request mean two things; refused rather than joined. */
const SINGLE = ['authorization', 'host', 'x-amz-date', 'x-amz-target', 'x-amz-content-sha256', 'content-type', 'x-amz-security-token'];

export interface CheckedHeaders {
  auth: ParsedAuthorization;
  secret: string;
  amzDate: string;
}

/**
 * Everything that can be checked before the body is read: the Authorization header, the access
 * key, the credential scope, the clock and which headers are signed. Lets the transport refuse a
 * request it would refuse anyway without buffering its body first.
 */
export function checkSigV4Headers(req: Omit<SigV4Request, 'body'>, o: SigV4Options): CheckedHeaders {
  const headers = headerValues(req.rawHeaders);
  for (const name of SINGLE) {
    if ((headers.get(name)?.length ?? 0) > 1) throw incomplete(`The ${name} header may appear only once.`);
  }
  const authorization = headers.get('authorization')?.[0];
  if (!authorization) {
    if (/[?&]X-Amz-Algorithm=/.test(req.url))
      throw incomplete('Presigned (query-string) requests are not supported; sign the Authorization header');
    throw new PcaError('MissingAuthenticationTokenException', 'Missing Authentication Token', 403);
  }
  const auth = parseAuthorization(authorization);
  const secret = o.secrets.get(auth.accessKeyId);
  if (secret === undefined) throw new PcaError('UnrecognizedClientException', 'The security token included in the request is invalid.');
  if (auth.service !== o.service) {
    throw new PcaError('InvalidSignatureException', `Credential should be scoped to correct service: '${o.service}'.`);
  }
  if (auth.region !== o.region) {
    throw new PcaError(
      'InvalidSignatureException',
      `Credential should be scoped to a valid region, not '${auth.region}'. This endpoint answers for '${o.region}'.`,
    );
  }
  const amzDate = headers.get('x-amz-date')?.[0];
  const when = amzDate ? parseAmzDate(amzDate) : undefined;
  if (!amzDate || !when) throw incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  if (!amzDate.startsWith(auth.date)) {
    throw new PcaError(
      'InvalidSignatureException',
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.date}' != '${amzDate.slice(0, 8)}'`,
    );
  }
  const skew = o.maxSkewMs ?? SIGV4_MAX_SKEW_MS;
  const late = o.now.getTime() - when.getTime();
  if (Math.abs(late) > skew) {
    const which = late > 0 ? 'earlier' : 'later';
    throw new PcaError(
      'InvalidSignatureException',
      `Signature expired: ${amzDate} is now ${which} than the allowed clock skew of ${Math.round(skew / 60_000)} minutes (server time ${o.now.toISOString()})`,
    );
  }
  for (const h of ['host', 'x-amz-date', ...(o.mustSign ?? [])]) {
    if (!auth.signedHeaders.includes(h)) throw new PcaError('InvalidSignatureException', `'${h}' must be a signed header.`);
  }
  for (const h of auth.signedHeaders) {
    if (!headers.has(h)) throw new PcaError('InvalidSignatureException', `'${h}' is listed in SignedHeaders but is not in the request.`);
  }
  return { auth, secret, amzDate };
}

/** Verifies the request's SigV4 signature; returns the access key id, or throws in the AWS error shape. */
export function verifySigV4(req: SigV4Request, o: SigV4Options): string {
  const { auth, secret, amzDate } = checkSigV4Headers(req, o);
  const bodyHash = sha256Hex(req.body);
  const declaredHash = headerValues(req.rawHeaders).get('x-amz-content-sha256')?.[0];
  if (declaredHash !== undefined && declaredHash !== 'UNSIGNED-PAYLOAD' && declaredHash.toLowerCase() !== bodyHash) {
    throw new PcaError('InvalidSignatureException', 'The provided x-amz-content-sha256 header does not match what was computed.');
  }
  const canonical = canonicalRequest(req, auth.signedHeaders);
  const scope = `${auth.date}/${auth.region}/${auth.service}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate, scope, sha256Hex(canonical)].join('\n');
  const expected = hmac(signingKey(secret, auth.date, auth.region, auth.service), stringToSign);
  // Both sides are 32 bytes before comparing, so timingSafeEqual runs and its time says nothing about the signature.
  const given = /^[0-9a-f]{64}$/.test(auth.signature) ? Buffer.from(auth.signature, 'hex') : Buffer.alloc(expected.length);
  const same = timingSafeEqual(given, expected);
  if (!same || !/^[0-9a-f]{64}$/.test(auth.signature)) {
    throw new PcaError(
      'InvalidSignatureException',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    );
  }
  return auth.accessKeyId;
}
