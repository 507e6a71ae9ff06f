import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CaState } from '../../src/ca/state.js';
import { createCsr } from '../../src/pki/csr.js';
import { generateKeyPair } from '../../src/pki/keys.js';
import { PCA_MAX_BODY_BYTES, PCA_MAX_JSON_DEPTH, SIGV4_MAX_SKEW_MS } from '../../src/server/http/limits.js';
import { startPcaApi, type PcaApiHandle } from '../../src/server/pca/index.js';
import { tempDir } from '../helpers/tmp.js';
import { rawRequest, type RawResponse } from './raw-http.js';

const KEY = { id: 'AKIDABUSETEST01', secret: 'abuse-test-secret-0123456789' };
const REGION = 'us-east-1';

const sha256 = (d: string | Buffer): string => createHash('sha256').update(d).digest('hex');
const hmac = (k: string | Buffer, d: string): Buffer => createHmac('sha256', k).update(d).digest();
const amzDate = (d: Date): string =>
  d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

interface SignOptions {
  op?: string;
  /** The whole X-Amz-Target, instead of ACMPrivateCA.<op>. */
  target?: string;
  keyId?: string;
  secret?: string;
  region?: string;
  service?: string;
  date?: Date;
  /** The date in the credential scope, when it should differ from X-Amz-Date's. */
  scopeDay?: string;
  /** Headers left out of SignedHeaders (they are still sent). */
  unsigned?: string[];
  /** Sent and signed before the signature is made. */
  signedExtra?: [string, string][];
  /** Sent after signing: duplicates, or headers the signer never saw. */
  after?: [string, string][];
  authorization?: string | null;
  signature?: string;
}

/**
 * A POST / signed with SigV4, written here from the published algorithm (not with the server's own
 * sigv4.ts), as raw bytes so that duplicated or unsigned headers really reach the server.
 */
function signedRequest(port: number, body: string | Buffer, o: SignOptions = {}): Buffer {
  const date = o.date ?? new Date();
  const amz = amzDate(date);
  const day = o.scopeDay ?? amz.slice(0, 8);
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const headers: [string, string][] = [
    ['host', `127.0.0.1:${port}`],
    ['content-type', 'application/x-amz-json-1.1'],
    ['x-amz-date', amz],
    ['x-amz-target', o.target ?? `ACMPrivateCA.${o.op ?? 'DescribeCertificateAuthority'}`],
    ...(o.signedExtra ?? []),
  ];
  const signed = headers.filter(([n]) => !(o.unsigned ?? []).includes(n)).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const names = signed.map(([n]) => n).join(';');
  const canonical = ['POST', '/', '', signed.map(([n, v]) => `${n}:${v}\n`).join(''), names, sha256(bytes)].join('\n');
  const scope = `${day}/${o.region ?? REGION}/${o.service ?? 'acm-pca'}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amz, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${o.secret ?? KEY.secret}`, day), o.region ?? REGION), o.service ?? 'acm-pca'), 'aws4_request');
  const signature = o.signature ?? hmac(key, toSign).toString('hex');
  const auth =
    o.authorization === undefined
      ? `AWS4-HMAC-SHA256 Credential=${o.keyId ?? KEY.id}/${scope}, SignedHeaders=${names}, Signature=${signature}`
      : o.authorization;
  const all: [string, string][] = [
    ...headers,
    ...(auth === null ? [] : [['authorization', auth] as [string, string]]),
    ['content-length', String(bytes.length)],
    ...(o.after ?? []),
  ];
  return Buffer.concat([Buffer.from(`POST / HTTP/1.1\r\n${all.map(([n, v]) => `${n}: ${v}`).join('\r\n')}\r\n\r\n`), bytes]);
}

function awsError(r: RawResponse, what = ''): { status: number; type: string; message: string } {
  let body: { __type: string; message: string };
  try {
    body = JSON.parse(r.body) as { __type: string; message: string };
  } catch {
    assert.fail(`${what}: not an AWS JSON error: ${r.text.slice(0, 300)}`);
  }
  assert.equal(r.headers['x-amzn-errortype'], body.__type);
  return { status: r.status, type: body.__type, message: body.message };
}

describe('the PCA API under SigV4 abuse', () => {
  const tmp = tempDir('meshca-pca-abuse-');
  let api: PcaApiHandle;
  let clock = new Date();
  let port = 0;
  let caArn = '';
  const csr = createCsr({ key: generateKeyPair('ec-p256').privateKey, sans: { dnsNames: ['web.example'] } }).pem;
  const issueBody = (token?: string): string =>
    JSON.stringify({
      CertificateAuthorityArn: caArn,
      Csr: Buffer.from(csr).toString('base64'),
      SigningAlgorithm: 'SHA256WITHECDSA',
      Validity: { Value: 1, Type: 'DAYS' },
      ...(token ? { IdempotencyToken: token } : {}),
    });
  const certificates = (): number => {
    const dir = join(tmp.path, 'pca', 'certificates');
    return existsSync(dir) ? readdirSync(dir).reduce((n, ca) => n + readdirSync(join(dir, ca)).length, 0) : 0;
  };
  const send = (bytes: string | Buffer | (string | Buffer)[], timeoutMs = 5000): Promise<RawResponse> =>
    rawRequest(`127.0.0.1:${port}`, bytes, { timeoutMs });

  before(async () => {
    const state = new CaState(tmp.path);
    state.initRoot({ alg: 'ec-p256', subject: { organization: ['corp'], commonName: 'PCA abuse root' }, now: new Date() });
    api = await startPcaApi({ state, addr: '127.0.0.1:0', accessKeys: [KEY], now: () => clock });
    port = api.port;
    caArn = api.cas()[0].arn;
  });
  after(async () => {
    await api?.close();
    tmp.cleanup();
  });

  it('accepts a correctly signed call (the signer in this file is right)', async () => {
    const r = await send(signedRequest(port, JSON.stringify({ CertificateAuthorityArn: caArn }), { date: clock }));
    assert.equal(r.status, 200, r.text);
    assert.equal((JSON.parse(r.body) as { CertificateAuthority: { Arn: string } }).CertificateAuthority.Arn, caArn);
  });

  it('refuses each kind of bad signature with its AWS error, issues nothing, and stays up', async () => {
    const body = issueBody();
    const op = 'IssueCertificate';
    const now = clock;
    const skewed = (ms: number) => new Date(now.getTime() + ms);
    const cases: { name: string; req: string | Buffer; status: number; type: string; message?: RegExp }[] = [
      {
        name: 'no Authorization header',
        req: signedRequest(port, body, { op, authorization: null }),
        status: 403,
        type: 'MissingAuthenticationTokenException',
      },
      {
        name: 'garbled Authorization',
        req: signedRequest(port, body, { op, authorization: 'Bearer nonsense, Credential' }),
        status: 400,
        type: 'IncompleteSignatureException',
      },
      {
        name: 'Authorization without parts',
        req: signedRequest(port, body, { op, authorization: 'AWS4-HMAC-SHA256 Credential=, Signature=' }),
        status: 400,
        type: 'IncompleteSignatureException',
      },
      {
        name: 'short credential',
        req: signedRequest(port, body, { op, authorization: `AWS4-HMAC-SHA256 Credential=${KEY.id}/x, SignedHeaders=host, Signature=00` }),
        status: 400,
        type: 'IncompleteSignatureException',
      },
      {
        name: 'unknown access key id',
        req: signedRequest(port, body, { op, keyId: 'AKIDSOMEONEELSE' }),
        status: 400,
        type: 'UnrecognizedClientException',
      },
      {
        name: 'wrong secret',
        req: signedRequest(port, body, { op, secret: 'not-the-secret-at-all' }),
        status: 400,
        type: 'InvalidSignatureException',
        message: /does not match/,
      },
      {
        name: 'signature of the wrong length',
        req: signedRequest(port, body, { op, signature: 'abcd' }),
        status: 400,
        type: 'InvalidSignatureException',
        message: /does not match/,
      },
      {
        name: 'signature in upper case hex',
        req: signedRequest(port, body, { op, signature: 'A'.repeat(64) }),
        status: 400,
        type: 'InvalidSignatureException',
        message: /does not match/,
      },
      {
        name: 'host not signed',
        req: signedRequest(port, body, { op, unsigned: ['host'] }),
        status: 400,
        type: 'InvalidSignatureException',
        message: /'host' must be a signed header/,
      },
      {
        name: 'x-amz-date not signed',
        req: signedRequest(port, body, { op, unsigned: ['x-amz-date'] }),
        status: 400,
        type: 'InvalidSignatureException',
        message: /'x-amz-date' must be a signed header/,
      },
      {
        name: 'x-amz-target not signed',
        req: signedRequest(port, body, { op, unsigned: ['x-amz-target'] }),
        status: 400,
        type: 'InvalidSignatureException',
        message: /'x-amz-target' must be a signed header/,
      },
      {
        name: 'X-Amz-Date 6 minutes old',
        req: signedRequest(port, body, { op, date: skewed(-SIGV4_MAX_SKEW_MS - 60_000) }),
        status: 400,
        type: 'InvalidSignatureException',
        message: /Signature expired/,
      },
      {
        name: 'X-Amz-Date 6 minutes ahead',
        req: signedRequest(port, body, { op, date: skewed(SIGV4_MAX_SKEW_MS + 60_000) }),
        status: 400,
        type: 'InvalidSignatureException',
        message: /Signature expired/,
      },
      {
        name: 'scope with another region',
        req: signedRequest(port, body, { op, region: 'eu-west-1' }),
        status: 400,
        type: 'InvalidSignatureException',
        message: /region/,
      },
      {
        name: 'scope with another service',
        req: signedRequest(port, body, { op, service: 's3' }),
        status: 400,
        type: 'InvalidSignatureException',
        message: /service/,
      },
      {
        name: 'scope with another date',
        req: signedRequest(port, body, { op, scopeDay: '20200101' }),
        status: 400,
        type: 'InvalidSignatureException',
        message: /Date in Credential scope/,
      },
      {
        name: 'x-amz-target sent twice',
        req: signedRequest(port, body, { op, after: [['x-amz-target', 'ACMPrivateCA.IssueCertificate']] }),
        status: 400,
        type: 'IncompleteSignatureException',
        message: /only once/,
      },
      {
        name: 'Authorization sent twice',
        req: signedRequest(port, body, { op, after: [['authorization', 'AWS4-HMAC-SHA256 Credential=x']] }),
        status: 400,
        type: 'IncompleteSignatureException',
        message: /only once/,
      },
      {
        name: 'x-amz-date sent twice',
        req: signedRequest(port, body, { op, after: [['x-amz-date', amzDate(now)]] }),
        status: 400,
        type: 'IncompleteSignatureException',
        message: /only once/,
      },
      {
        name: 'x-amz-content-sha256 that is not the body hash',
        req: signedRequest(port, body, { op, signedExtra: [['x-amz-content-sha256', sha256('{}')]] }),
        status: 400,
        type: 'InvalidSignatureException',
        message: /x-amz-content-sha256/,
      },
      {
        name: 'signed header missing from the request',
        req: signedRequest(port, body, { op, signedExtra: [['x-extra', 'v']] })
          .toString()
          .replace('x-extra: v\r\n', ''),
        status: 400,
        type: 'InvalidSignatureException',
        message: /not in the request/,
      },
      {
        name: 'body changed after signing',
        req: Buffer.from(signedRequest(port, body, { op }).toString().replace('"Value":1', '"Value":9')),
        status: 400,
        type: 'InvalidSignatureException',
        message: /does not match/,
      },
      {
        name: 'non-JSON body',
        req: signedRequest(port, 'this is not json', { op }),
        status: 400,
        type: 'SerializationException',
        message: /not valid JSON/,
      },
      { name: 'JSON array body', req: signedRequest(port, '[1,2]', { op }), status: 400, type: 'SerializationException' },
      {
        name: 'deeply nested JSON',
        req: signedRequest(port, `{"Csr":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, { op }),
        status: 400,
        type: 'SerializationException',
        message: /nests deeper/,
      },
      {
        name: 'just too deep JSON',
        req: signedRequest(port, `${'{"a":'.repeat(PCA_MAX_JSON_DEPTH + 1)}1${'}'.repeat(PCA_MAX_JSON_DEPTH + 1)}`, { op }),
        status: 400,
        type: 'SerializationException',
        message: /nests deeper/,
      },
      {
        name: 'unknown operation',
        req: signedRequest(port, body, { op: 'DeleteCertificateAuthority' }),
        status: 400,
        type: 'UnknownOperationException',
      },
      {
        name: 'target of another service',
        req: signedRequest(port, body, { target: 'AmazonS3.PutObject' }),
        status: 400,
        type: 'UnknownOperationException',
      },
      { name: 'GET', req: `GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`, status: 404, type: 'UnknownOperationException' },
      {
        name: 'malformed path, unsigned',
        req: `POST // HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 0\r\n\r\n`,
        status: 403,
        type: 'MissingAuthenticationTokenException',
      },
    ];
    for (const c of cases) {
      const r = await send(c.req);
      assert.ok(r.status > 0, `${c.name}: no answer (${r.error ?? ''})`);
      const e = awsError(r, c.name);
      assert.equal(e.status, c.status, `${c.name}: ${r.body}`);
      assert.equal(e.type, c.type, `${c.name}: ${r.body}`);
      if (c.message) assert.match(e.message, c.message, c.name);
    }
    assert.equal(certificates(), 0);
    assert.equal(api.service.stats.issued, 0);
    const ok = await send(signedRequest(port, JSON.stringify({ CertificateAuthorityArn: caArn }), { date: clock }));
    assert.equal(ok.status, 200, ok.text);
  });

  it('answers 413 to a body over the limit without reading it all, announced or chunked', async () => {
    const announced = await send(
      Buffer.concat([
        Buffer.from(
          `POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/x-amz-json-1.1\r\nx-amz-target: ACMPrivateCA.IssueCertificate\r\ncontent-length: ${100 * PCA_MAX_BODY_BYTES}\r\n\r\n`,
        ),
        Buffer.alloc(64 * 1024, 0x20),
      ]),
    );
    // Unsigned, so refused on its headers before the body matters.
    assert.equal(awsError(announced).type, 'MissingAuthenticationTokenException');
    assert.equal(announced.headers.connection, 'close');

    const signedHuge = signedRequest(port, Buffer.alloc(PCA_MAX_BODY_BYTES + 1, 0x20), { op: 'IssueCertificate', date: clock });
    const head = signedHuge.subarray(0, signedHuge.indexOf('\r\n\r\n') + 4);
    const big = await send(Buffer.concat([head, Buffer.alloc(64 * 1024, 0x20)]));
    assert.equal(big.status, 413, big.text.slice(0, 300));
    assert.equal(awsError(big).type, 'SerializationException');
    assert.equal(big.headers.connection, 'close');

    // Chunked, with no length announced: refused once more than the limit has arrived.
    const chunkHead = head.toString().replace(/content-length: \d+\r\n/, 'transfer-encoding: chunked\r\n');
    const chunk = `10000\r\n${' '.repeat(0x10000)}\r\n`;
    const chunked = await send([chunkHead, ...Array.from({ length: PCA_MAX_BODY_BYTES / 0x10000 + 2 }, () => chunk)], 10_000);
    assert.equal(chunked.status, 413, chunked.text.slice(0, 300));
    assert.equal(awsError(chunked).type, 'SerializationException');
    assert.equal(certificates(), 0);
  });

  it('refuses a valid IssueCertificate replayed after the skew window, and issues only once', async () => {
    const original = signedRequest(port, issueBody(), { op: 'IssueCertificate', date: clock });
    const first = await send(original);
    assert.equal(first.status, 200, first.text);
    assert.equal(certificates(), 1);
    const saved = clock;
    clock = new Date(saved.getTime() + SIGV4_MAX_SKEW_MS + 60_000);
    try {
      const replay = await send(original);
      const e = awsError(replay);
      assert.equal(e.status, 400);
      assert.equal(e.type, 'InvalidSignatureException');
      assert.match(e.message, /Signature expired/);
    } finally {
      clock = saved;
    }
    assert.equal(certificates(), 1);
    assert.equal(api.service.stats.issued, 1);
  });
});
