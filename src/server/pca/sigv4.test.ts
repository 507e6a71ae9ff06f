import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { SIGV4_MAX_SKEW_MS } from '../http/limits.js';
import { PcaError } from './errors.js';
import { jsonNestsDeeperThan } from './http.js';
import { canonicalRequest, signingKey, verifySigV4, type SigV4Options, type SigV4Request } from './sigv4.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const secrets = new Map([['AKIDEXAMPLE', SECRET]]);

function vector(url: string, signature: string): SigV4Request {
  return {
    method: 'GET',
    url,
    rawHeaders: [
      'Host',
      'example.amazonaws.com',
      'X-Amz-Date',
      '20150830T123600Z',
      'Authorization',
      `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=${signature}`,
    ],
    body: Buffer.alloc(0),
  };
}

const at2015 = { service: 'service', region: 'us-east-1', now: new Date('2015-08-30T12:36:00Z'), secrets };

/** Signs like the SDK does, from the exported pieces; the AWS vectors above pin those pieces down. */
function signed(body: string, o: { secret?: string; region?: string; date?: Date; extraHeaders?: string[] } = {}): SigV4Request {
  const date = o.date ?? new Date();
  const amz = date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  const day = amz.slice(0, 8);
  const region = o.region ?? 'us-east-1';
  const base: SigV4Request = {
    method: 'POST',
    url: '/',
    rawHeaders: [
      'host',
      '127.0.0.1:9999',
      'content-type',
      'application/x-amz-json-1.1',
      'x-amz-date',
      amz,
      'x-amz-target',
      'ACMPrivateCA.DescribeCertificateAuthority',
      ...(o.extraHeaders ?? []),
    ],
    body: Buffer.from(body),
  };
  const names = ['content-type', 'host', 'x-amz-date', 'x-amz-target'];
  const canon = canonicalRequest(base, names);
  const scope = `${day}/${region}/acm-pca/aws4_request`;
  const sts = ['AWS4-HMAC-SHA256', amz, scope, createHash('sha256').update(canon).digest('hex')].join('\n');
  const sig = createHmac('sha256', signingKey(o.secret ?? SECRET, day, region, 'acm-pca'))
    .update(sts)
    .digest('hex');
  base.rawHeaders.push(
    'authorization',
    `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/${scope}, SignedHeaders=${names.join(';')}, Signature=${sig}`,
  );
  return base;
}

const pcaOpts = () => ({ service: 'acm-pca', region: 'us-east-1', now: new Date(), secrets });

function rejects(req: SigV4Request, type: string, o: SigV4Options = pcaOpts()): PcaError {
  let caught: unknown;
  try {
    verifySigV4(req, o);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof PcaError, `expected ${type}, got ${String(caught)}`);
  assert.equal(caught.awsType, type);
  return caught;
}

describe('SigV4 verification', () => {
  it('accepts the AWS SigV4 test-suite vectors get-vanilla and get-vanilla-query-order-key-case', () => {
    assert.equal(verifySigV4(vector('/', '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'), at2015), 'AKIDEXAMPLE');
    assert.equal(
      verifySigV4(vector('/?Param2=value2&Param1=value1', 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500'), at2015),
      'AKIDEXAMPLE',
    );
  });

  it('rejects a vector whose signature was altered by one digit', () => {
    rejects(vector('/', '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf32'), 'InvalidSignatureException', at2015);
  });

  it('accepts a signed POST and rejects it once the body or a signed header changes', () => {
    const req = signed('{"CertificateAuthorityArn":"x"}');
    assert.equal(verifySigV4(req, pcaOpts()), 'AKIDEXAMPLE');
    rejects({ ...req, body: Buffer.from('{"CertificateAuthorityArn":"y"}') }, 'InvalidSignatureException');
    const headers = [...req.rawHeaders];
    headers[headers.indexOf('ACMPrivateCA.DescribeCertificateAuthority')] = 'ACMPrivateCA.IssueCertificate';
    rejects({ ...req, rawHeaders: headers }, 'InvalidSignatureException');
  });

  it('collapses whitespace in header values as the canonical form requires', () => {
    const req = signed('{}');
    const headers = [...req.rawHeaders];
    headers[headers.indexOf('application/x-amz-json-1.1')] = '  application/x-amz-json-1.1  ';
    assert.equal(verifySigV4({ ...req, rawHeaders: headers }, pcaOpts()), 'AKIDEXAMPLE');
  });

  it('names each kind of failure with the AWS error type', () => {
    rejects(signed('{}', { secret: 'not-the-secret' }), 'InvalidSignatureException');
    const unknown = signed('{}');
    unknown.rawHeaders = unknown.rawHeaders.map((h) => h.replace('Credential=AKIDEXAMPLE/', 'Credential=AKIDOTHER/'));
    rejects(unknown, 'UnrecognizedClientException');
    assert.match(rejects(signed('{}', { region: 'eu-west-1' }), 'InvalidSignatureException').message, /region/);
    assert.match(
      rejects(signed('{}', { date: new Date(Date.now() - 20 * 60_000) }), 'InvalidSignatureException').message,
      /Signature expired/,
    );
    const none = signed('{}');
    none.rawHeaders = none.rawHeaders.slice(0, -2);
    assert.equal(rejects(none, 'MissingAuthenticationTokenException').httpStatus, 403);
    const broken = signed('{}');
    broken.rawHeaders[broken.rawHeaders.length - 1] = 'AWS4-HMAC-SHA256 SignedHeaders=host';
    rejects(broken, 'IncompleteSignatureException');
  });

  it('allows five minutes of clock skew either way and refuses beyond', () => {
    for (const ms of [SIGV4_MAX_SKEW_MS - 5000, -(SIGV4_MAX_SKEW_MS - 5000)])
      assert.equal(verifySigV4(signed('{}', { date: new Date(Date.now() + ms) }), pcaOpts()), 'AKIDEXAMPLE');
    for (const ms of [SIGV4_MAX_SKEW_MS + 5000, -(SIGV4_MAX_SKEW_MS + 5000)])
      rejects(signed('{}', { date: new Date(Date.now() + ms) }), 'InvalidSignatureException');
  });

  it('refuses a second copy of a header that decides what the request means', () => {
    for (const name of ['authorization', 'host', 'x-amz-date', 'x-amz-target', 'content-type']) {
      const req = signed('{}');
      const i = req.rawHeaders.findIndex((h) => h.toLowerCase() === name);
      req.rawHeaders.push(name.toUpperCase(), req.rawHeaders[i + 1]);
      assert.match(rejects(req, 'IncompleteSignatureException').message, /only once/, name);
    }
  });

  it('requires the headers named in mustSign to be signed', () => {
    assert.equal(verifySigV4(signed('{}'), { ...pcaOpts(), mustSign: ['x-amz-target'] }), 'AKIDEXAMPLE');
    assert.match(
      rejects(signed('{}'), 'InvalidSignatureException', { ...pcaOpts(), mustSign: ['x-amz-security-token'] }).message,
      /must be a signed header/,
    );
  });
});

describe('JSON nesting depth', () => {
  it('counts brackets outside strings only', () => {
    assert.equal(jsonNestsDeeperThan('{"a":[[1]]}', 3), false);
    assert.equal(jsonNestsDeeperThan('{"a":[[[1]]]}', 3), true);
    assert.equal(jsonNestsDeeperThan(`{"a":"${'['.repeat(100)}\\"{{"}`, 1), false);
    assert.equal(jsonNestsDeeperThan('['.repeat(1_000_000), 16), true);
  });
});
