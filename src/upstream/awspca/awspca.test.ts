import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CaState } from '../../ca/state.js';
import { createCsr } from '../../pki/csr.js';
import { MeshcaError } from '../../pki/errors.js';
import { generateKeyPair } from '../../pki/keys.js';
import { PcaError } from '../../server/pca/errors.js';
import { PcaService } from '../../server/pca/service.js';
import type { PcaCalls } from './client.js';
import { awsPcaUpstreamSchema, type AwsPcaUpstreamInput } from './config.js';
import { abortableSleep } from './retry.js';
import { AwsPcaUpstream, validityFor } from './index.js';

/** The SDK surface, answered by the real PCA service in-process; failures arrive named like SDK errors. */
function sdkError(e: unknown): unknown {
  if (e instanceof PcaError) return Object.assign(new Error(e.message), { name: e.awsType, $metadata: { httpStatusCode: e.httpStatus } });
  return e;
}

interface Harness {
  calls: PcaCalls;
  service: PcaService;
  issueInputs: Record<string, unknown>[];
  /** Runs before each IssueCertificate reaches the service; throw to simulate a failure. */
  beforeIssue?: (n: number) => void;
  /** Runs after a successful IssueCertificate; throw to simulate a lost response. */
  afterIssue?: (n: number) => void;
  status: string;
}

function harness(service: PcaService): Harness {
  const h: Harness = { service, issueInputs: [], status: 'ACTIVE', calls: undefined as unknown as PcaCalls };
  const call = async <T>(f: () => T): Promise<T> => {
    try {
      return f();
    } catch (e) {
      throw sdkError(e);
    }
  };
  h.calls = {
    issueCertificate: async (input) => {
      const n = h.issueInputs.push({ ...input });
      h.beforeIssue?.(n);
      const out = await call(() =>
        service.issueCertificate({ ...input, Csr: Buffer.from(input.Csr as Uint8Array).toString('base64') } as never),
      );
      h.afterIssue?.(n);
      return out;
    },
    getCertificate: (ca, cert) => call(() => service.getCertificate({ CertificateAuthorityArn: ca, CertificateArn: cert })),
    getCaCertificate: (ca) => call(() => service.getCaCertificate({ CertificateAuthorityArn: ca })),
    describeCa: async (ca) => {
      const d = (await call(() => service.describeCa({ CertificateAuthorityArn: ca }))).CertificateAuthority;
      const conf = d.CertificateAuthorityConfiguration as { KeyAlgorithm: string };
      return { Status: h.status, Type: d.Type as string, UsageMode: d.UsageMode as string, KeyAlgorithm: conf.KeyAlgorithm };
    },
    close: () => undefined,
  };
  return h;
}

describe('awspca upstream (against the PCA service, without HTTP)', () => {
  let dir: string;
  let state: CaState;
  let clock = Date.now();
  const sleeps: number[] = [];
  const csrPem = () =>
    createCsr({ key: generateKeyPair('ec-p256').privateKey, subject: { organization: ['mesh'], commonName: 'istio ca' }, isCA: true }).pem;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'meshca-awspca-'));
    state = new CaState(dir);
    state.initRoot({ alg: 'ec-p256', subject: { organization: ['corp'], commonName: 'PCA root' }, now: new Date() });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function setup(
    o: { throttle?: number; delayMs?: number; short?: boolean; config?: Partial<AwsPcaUpstreamInput>; warn?: (m: string) => void } = {},
  ) {
    const service = new PcaService({
      state,
      region: 'us-east-1',
      injectThrottle: o.throttle,
      issueDelayMs: o.delayMs,
      usageMode: o.short ? 'SHORT_LIVED_CERTIFICATE' : undefined,
      now: () => new Date(clock),
    });
    const h = harness(service);
    sleeps.length = 0;
    const config = awsPcaUpstreamSchema.parse({
      type: 'awspca',
      arn: service.list()[0].arn,
      retry: { baseDelayMs: 100, maxDelayMs: 400 },
      ...o.config,
    });
    const upstream = new AwsPcaUpstream(
      config,
      { warn: o.warn },
      {
        calls: h.calls,
        retryHooks: {
          random: () => 1,
          sleep: async (ms) => {
            sleeps.push(ms);
            clock += ms;
          },
        },
      },
    );
    return { h, upstream, service };
  }

  it('reuses one IdempotencyToken across throttling retries, with capped backoff, and PCA issues one certificate', async () => {
    const { h, upstream, service } = setup({ throttle: 4 });
    const out = await upstream.signIntermediate({ csrPem: csrPem(), ttlSeconds: 30 * 86_400 });
    assert.equal(h.issueInputs.length, 5);
    assert.equal(new Set(h.issueInputs.map((i) => i.IdempotencyToken)).size, 1);
    assert.deepEqual(sleeps, [100, 200, 400, 400]);
    assert.equal(service.stats.issued, 1);
    assert.equal(out.cert.ext.basicConstraints?.pathLen, 0);
    assert.equal(h.issueInputs[0].TemplateArn, 'arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1');
    assert.equal(h.issueInputs[0].SigningAlgorithm, 'SHA256WITHECDSA');
    assert.deepEqual(h.issueInputs[0].Validity, { Type: 'DAYS', Value: 30 });
  });

  it('retries a lost IssueCertificate response with the same token and gets the same certificate back', async () => {
    const { h, upstream, service } = setup();
    h.afterIssue = (n) => {
      if (n === 1) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    };
    await upstream.signIntermediate({ csrPem: csrPem(), ttlSeconds: 86_400 });
    assert.equal(h.issueInputs.length, 2);
    assert.equal(h.issueInputs[0].IdempotencyToken, h.issueInputs[1].IdempotencyToken);
    assert.equal(service.stats.issued, 1);
    assert.equal(service.stats.idempotentReplays, 1);
  });

  it('polls GetCertificate while PCA answers RequestInProgressException', async () => {
    const { upstream } = setup({ delayMs: 2000, config: { pollIntervalMs: 300 } });
    const out = await upstream.signIntermediate({ csrPem: csrPem(), ttlSeconds: 86_400, pathLen: 0 });
    assert.ok(out.cert.isCA);
    assert.ok(sleeps.length >= 3, `polled ${sleeps.length} times`);
    assert.equal(sleeps[0], 300);
    assert.ok(sleeps[1] > 300, 'the poll interval grows');
  });

  it('gives up on throttling after maxAttempts with resource_exhausted, and does not retry a malformed CSR', async () => {
    const { h, upstream } = setup({ throttle: 100, config: { retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1 } } });
    await assert.rejects(
      upstream.signIntermediate({ csrPem: csrPem(), ttlSeconds: 86_400 }),
      (e: unknown) => e instanceof MeshcaError && e.code === 'resource_exhausted' && /ThrottlingException/.test(e.message),
    );
    assert.equal(h.issueInputs.length, 3);
    const bad = setup();
    bad.h.calls.issueCertificate = async () => {
      bad.h.issueInputs.push({});
      throw sdkError(new PcaError('MalformedCSRException', 'bad csr'));
    };
    await assert.rejects(
      bad.upstream.signIntermediate({ csrPem: csrPem(), ttlSeconds: 86_400 }),
      (e: unknown) => e instanceof MeshcaError && e.code === 'invalid_argument' && e.reason === 'awspca_malformedcsr',
    );
    assert.equal(bad.h.issueInputs.length, 1);
  });

  it('caps workload certificates (RA mode) at 7 days, and intermediates from a SHORT_LIVED CA too', async () => {
    const { h, upstream } = setup({ short: true, config: { mode: 'ra' } });
    const leafCsr = createCsr({ key: generateKeyPair('ec-p256').privateKey, sans: { uris: ['spiffe://cluster.local/ns/a/sa/b'] } }).pem;
    const out = await upstream.signWorkload({ csrPem: leafCsr, ttlSeconds: 30 * 86_400 });
    assert.deepEqual(h.issueInputs[0].Validity, { Type: 'DAYS', Value: 7 });
    assert.equal(h.issueInputs[0].TemplateArn, 'arn:aws:acm-pca:::template/EndEntityCertificate/V1');
    assert.equal(out.cert.isCA, false);
    assert.ok(out.cert.notAfter.getTime() - clock <= 7 * 86_400_000 + 1000);
    await upstream.signIntermediate({ csrPem: csrPem(), ttlSeconds: 365 * 86_400 });
    assert.deepEqual(h.issueInputs[1].Validity, { Type: 'DAYS', Value: 7 });
    // Outside RA mode, on a GENERAL_PURPOSE CA (cert-manager's AWSPCAIssuer), the TTL is asked for as is.
    const general = setup();
    await general.upstream.signWorkload({ csrPem: leafCsr, ttlSeconds: 30 * 86_400 });
    assert.deepEqual(general.h.issueInputs[0].Validity, { Type: 'DAYS', Value: 30 });
  });

  it('says once that RA mode shortened a requested lifetime, naming both lifetimes', async () => {
    const warnings: string[] = [];
    const { h, upstream } = setup({ short: true, config: { mode: 'ra' }, warn: (m) => warnings.push(m) });
    const leafCsr = () =>
      createCsr({ key: generateKeyPair('ec-p256').privateKey, sans: { uris: ['spiffe://cluster.local/ns/a/sa/b'] } }).pem;
    await upstream.signWorkload({ csrPem: leafCsr(), ttlSeconds: 86_400 });
    assert.deepEqual(warnings, [], 'a lifetime within the limit is not worth a warning');
    await upstream.signWorkload({ csrPem: leafCsr(), ttlSeconds: 30 * 86_400 });
    await upstream.signWorkload({ csrPem: leafCsr(), ttlSeconds: 30 * 86_400 });
    assert.equal(h.issueInputs.length, 3);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /requested lifetime of 30d was granted as 7d/);
  });

  it('checks at start that the CA is ACTIVE, and reports its root', async () => {
    const { h, upstream } = setup();
    h.status = 'DISABLED';
    await assert.rejects(
      upstream.check(),
      (e: unknown) => e instanceof MeshcaError && e.code === 'failed_precondition' && /DISABLED, not ACTIVE/.test(e.message),
    );
    const roots = await upstream.roots();
    assert.equal(roots.length, 1);
    assert.equal(roots[0].subject, 'O = corp, CN = PCA root');
  });

  it('asks for whole days when it can and an absolute end otherwise', () => {
    const now = new Date('2030-01-01T00:00:00Z');
    assert.deepEqual(validityFor(2 * 86_400, now), { Type: 'DAYS', Value: 2 });
    assert.deepEqual(validityFor(3600, now), { Type: 'ABSOLUTE', Value: now.getTime() / 1000 + 3600 });
  });
});

describe('abortableSleep', () => {
  it('resolves after the delay, and rejects with the reason when aborted before or during the wait', async () => {
    await abortableSleep(5);
    const reason = new Error('shutting down');
    await assert.rejects(abortableSleep(10, AbortSignal.abort(reason)), (e) => e === reason);
    const ac = new AbortController();
    const waiting = abortableSleep(60_000, ac.signal);
    setTimeout(() => ac.abort(reason), 5);
    await assert.rejects(waiting, (e) => e === reason);
  });
});
