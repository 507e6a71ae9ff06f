import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ACMPCAClient, GetCertificateCommand, IssueCertificateCommand, ListCertificateAuthoritiesCommand } from '@aws-sdk/client-acm-pca';
import { IntermediateManager } from '../../src/ca/intermediate-manager.js';
import { CaState } from '../../src/ca/state.js';
import { certsToPem, parseCertificate, type ParsedCertificate } from '../../src/pki/certificate.js';
import { verifyChain } from '../../src/pki/chain.js';
import { createCsr } from '../../src/pki/csr.js';
import { MeshcaError } from '../../src/pki/errors.js';
import { generateKeyPair } from '../../src/pki/keys.js';
import { startPcaApi, type PcaApiHandle, type PcaApiOptions, type PcaCallRecord } from '../../src/server/pca/index.js';
import { awsPcaUpstreamSchema, type AwsPcaUpstreamInput } from '../../src/upstream/awspca/config.js';
import { AwsPcaUpstream } from '../../src/upstream/awspca/index.js';
import { opensslVerify } from '../helpers/openssl.js';
import { tempDir } from '../helpers/tmp.js';

const KEY = { id: 'AKIDMESHCATEST01', secret: 'meshca-test-secret-key-0123456789' };
const SPIFFE = 'spiffe://cluster.local/ns/default/sa/web';
const DAY = 86_400_000;

// The real SDK, with credentials from the environment like any AWS program.
process.env.AWS_ACCESS_KEY_ID = KEY.id;
process.env.AWS_SECRET_ACCESS_KEY = KEY.secret;
process.env.AWS_EC2_METADATA_DISABLED = 'true';
delete process.env.AWS_SESSION_TOKEN;
delete process.env.AWS_PROFILE;
delete process.env.AWS_ENDPOINT_URL;

const csrPem = (isCA = true) =>
  createCsr({
    key: generateKeyPair('ec-p256').privateKey,
    subject: isCA ? { organization: ['mesh'], commonName: 'istio intermediate' } : undefined,
    sans: isCA ? undefined : { uris: [SPIFFE] },
    isCA,
  }).pem;

describe('AWS PCA upstream through the real SDK against the PCA-compatible API', () => {
  const tmp = tempDir('meshca-pca-e2e-');
  let state: CaState;
  let root: ParsedCertificate;
  const servers: PcaApiHandle[] = [];

  async function server(o: Partial<PcaApiOptions> = {}): Promise<{ api: PcaApiHandle; calls: PcaCallRecord[]; arn: string }> {
    const calls: PcaCallRecord[] = [];
    const api = await startPcaApi({ state, addr: '127.0.0.1:0', accessKeys: [KEY], onCall: (r) => calls.push(r), ...o });
    servers.push(api);
    return { api, calls, arn: api.cas()[0].arn };
  }

  function upstream(api: PcaApiHandle, arn: string, extra: Partial<AwsPcaUpstreamInput> = {}): AwsPcaUpstream {
    return new AwsPcaUpstream(
      awsPcaUpstreamSchema.parse({
        type: 'awspca',
        arn,
        endpointUrl: api.url,
        pollIntervalMs: 100,
        retry: { baseDelayMs: 20, maxDelayMs: 100 },
        ...extra,
      }),
    );
  }

  function opensslChainOk(leaf: ParsedCertificate, chain: ParsedCertificate[], name: string, at?: Date): void {
    const rootFile = join(tmp.path, `${name}-root.pem`);
    const untrusted = join(tmp.path, `${name}-chain.pem`);
    const leafFile = join(tmp.path, `${name}-leaf.pem`);
    writeFileSync(rootFile, root.pem);
    const between = chain.filter((c) => !c.der.equals(root.der));
    writeFileSync(untrusted, certsToPem(between));
    writeFileSync(leafFile, leaf.pem);
    const r = opensslVerify(
      rootFile,
      leafFile,
      between.length > 0 ? untrusted : undefined,
      at ? ['-attime', String(Math.floor(at.getTime() / 1000))] : [],
    );
    assert.equal(r.code, 0, `openssl verify ${name}: ${r.stdout}${r.stderr}`);
  }

  before(() => {
    state = new CaState(join(tmp.path, 'state'));
    root = state.initRoot({ alg: 'ec-p256', subject: { organization: ['corp'], commonName: 'PCA test root' }, now: new Date() });
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    tmp.cleanup();
  });

  it('issues an intermediate: IssueCertificate, then GetCertificate polled through RequestInProgressException', async () => {
    const { api, calls, arn } = await server({ issueDelayMs: 600 });
    const up = upstream(api, arn);
    await up.check();
    const out = await up.signIntermediate({ csrPem: csrPem(), ttlSeconds: 30 * 86_400 });
    up.close();
    assert.equal(out.cert.ext.basicConstraints?.pathLen, 0);
    assert.ok(out.cert.isCA);
    assert.equal(out.chain.length, 1);
    assert.ok(out.chain[0].der.equals(root.der));
    const ops = calls.map((c) => `${c.operation}:${c.errorType ?? c.status}`);
    assert.deepEqual(ops.slice(0, 2), ['DescribeCertificateAuthority:200', 'IssueCertificate:200']);
    assert.ok(ops.includes('GetCertificate:RequestInProgressException'), ops.join(' '));
    assert.equal(ops[ops.length - 1], 'GetCertificate:200');
    assert.ok(
      calls.every((c) => c.accessKeyId === KEY.id),
      'every call was SigV4-signed with the configured key',
    );
    opensslChainOk(out.cert, [], 'intermediate');
  });

  it('retries throttling with the same IdempotencyToken every time, and only one certificate is issued', async () => {
    const { api, calls, arn } = await server({ injectThrottle: 3, issueDelayMs: 200 });
    const up = upstream(api, arn);
    await up.signIntermediate({ csrPem: csrPem(), ttlSeconds: 7 * 86_400 });
    up.close();
    const issues = calls.filter((c) => c.operation === 'IssueCertificate');
    assert.deepEqual(
      issues.map((c) => c.errorType ?? 'ok'),
      ['ThrottlingException', 'ThrottlingException', 'ThrottlingException', 'ok'],
    );
    assert.equal(new Set(issues.map((c) => c.idempotencyToken)).size, 1, 'one token for every retry');
    assert.ok(issues[0].idempotencyToken);
    assert.equal(api.service.stats.issued, 1);
    assert.equal(up.lastIssue?.attempts, 4);
  });

  it('finds the endpoint in AWS_ENDPOINT_URL, as every AWS tool does', async () => {
    const { api, arn } = await server();
    process.env.AWS_ENDPOINT_URL = api.url;
    try {
      const up = new AwsPcaUpstream(awsPcaUpstreamSchema.parse({ type: 'awspca', arn }));
      const roots = await up.roots();
      up.close();
      assert.ok(roots[0].der.equals(root.der));
    } finally {
      delete process.env.AWS_ENDPOINT_URL;
    }
  });

  it('answers in PCA error shapes the SDK understands, and honours IdempotencyToken across a restart', async () => {
    const { api, arn } = await server();
    const client = new ACMPCAClient({ region: 'us-east-1', endpoint: api.url, maxAttempts: 1 });
    const issue = (over: Record<string, unknown> = {}) =>
      client.send(
        new IssueCertificateCommand({
          CertificateAuthorityArn: arn,
          Csr: Buffer.from(csrPem(false)),
          SigningAlgorithm: 'SHA256WITHECDSA',
          Validity: { Type: 'DAYS', Value: 1 },
          ...over,
        } as never),
      );
    const name = async (p: Promise<unknown>): Promise<string> =>
      p.then(
        () => 'ok',
        (e: Error) => e.name,
      );
    const csr = Buffer.from(csrPem(false));
    const a = await issue({ Csr: csr, IdempotencyToken: 'token-1' });
    const b = await issue({ Csr: csr, IdempotencyToken: 'token-1' });
    const c = await issue({ Csr: csr, IdempotencyToken: 'token-2' });
    assert.equal(a.CertificateArn, b.CertificateArn);
    assert.notEqual(a.CertificateArn, c.CertificateArn);
    assert.match(
      a.CertificateArn!,
      /^arn:aws:acm-pca:us-east-1:000000000000:certificate-authority\/[0-9a-f-]{36}\/certificate\/[0-9a-f]{32}$/,
    );
    assert.equal(await name(issue({ IdempotencyToken: 'token-1' })), 'InvalidRequestException', 'same token, different CSR');
    assert.equal(await name(issue({ CertificateAuthorityArn: arn.replace(/.{4}$/, '0000') })), 'ResourceNotFoundException');
    assert.equal(
      await name(issue({ CertificateAuthorityArn: 'arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/nope' })),
      'InvalidArnException',
    );
    assert.equal(await name(issue({ Csr: Buffer.from('not a csr') })), 'MalformedCSRException');
    assert.equal(await name(issue({ SigningAlgorithm: 'SHA256WITHRSA' })), 'InvalidArgsException');
    assert.equal(await name(issue({ Validity: { Type: 'YEARS', Value: 50 } })), 'InvalidArgsException');
    assert.equal(await name(issue({ TemplateArn: 'arn:aws:acm-pca:::template/CodeSigningCertificate/V1' })), 'InvalidArgsException');
    const wrong = new ACMPCAClient({
      region: 'us-east-1',
      endpoint: api.url,
      maxAttempts: 1,
      credentials: { accessKeyId: KEY.id, secretAccessKey: 'wrong-secret-0000000000' },
    });
    assert.equal(await name(wrong.send(new ListCertificateAuthoritiesCommand({}))), 'InvalidSignatureException');
    const stranger = new ACMPCAClient({
      region: 'us-east-1',
      endpoint: api.url,
      maxAttempts: 1,
      credentials: { accessKeyId: 'AKIDSTRANGER', secretAccessKey: KEY.secret },
    });
    assert.equal(await name(stranger.send(new ListCertificateAuthoritiesCommand({}))), 'UnrecognizedClientException');
    const list = await client.send(new ListCertificateAuthoritiesCommand({}));
    assert.deepEqual(
      list.CertificateAuthorities?.map((x) => [x.Arn, x.Type, x.Status]),
      [[arn, 'ROOT', 'ACTIVE']],
    );
    assert.ok(list.CertificateAuthorities?.[0].NotAfter instanceof Date);

    // A restarted server still knows the certificate and the token.
    await api.close();
    const again = await server();
    const client2 = new ACMPCAClient({ region: 'us-east-1', endpoint: again.api.url, maxAttempts: 1 });
    const got = await client2.send(new GetCertificateCommand({ CertificateAuthorityArn: arn, CertificateArn: a.CertificateArn }));
    assert.equal(parseCertificate(got.Certificate!).ext.san?.uris[0], SPIFFE);
    const replay = await client2.send(
      new IssueCertificateCommand({
        CertificateAuthorityArn: arn,
        Csr: csr,
        SigningAlgorithm: 'SHA256WITHECDSA',
        Validity: { Type: 'DAYS', Value: 1 },
        IdempotencyToken: 'token-1',
      }),
    );
    assert.equal(replay.CertificateArn, a.CertificateArn);
    client.destroy();
    client2.destroy();
    wrong.destroy();
    stranger.destroy();
  });

  it('short-lived mode: workload CSRs go to PCA capped at 7 days, and PCA refuses longer', async () => {
    const { api, calls, arn } = await server({ usageMode: 'SHORT_LIVED_CERTIFICATE' });
    const up = upstream(api, arn, { mode: 'ra' });
    await up.check();
    const out = await up.signWorkload({ csrPem: csrPem(false), ttlSeconds: 30 * 86_400 });
    up.close();
    assert.equal(out.cert.isCA, false);
    assert.equal(out.cert.ext.san?.uris[0], SPIFFE);
    const life = out.cert.notAfter.getTime() - Date.now();
    assert.ok(life <= 7 * DAY && life > 7 * DAY - 60_000, `validity ends in ${life / DAY} days`);
    assert.equal(calls.find((c) => c.operation === 'IssueCertificate')?.status, 200);
    const client = new ACMPCAClient({ region: 'us-east-1', endpoint: api.url, maxAttempts: 1 });
    const refused = await client
      .send(
        new IssueCertificateCommand({
          CertificateAuthorityArn: arn,
          Csr: Buffer.from(csrPem(false)),
          SigningAlgorithm: 'SHA256WITHECDSA',
          Validity: { Type: 'DAYS', Value: 8 },
        }),
      )
      .then(
        () => 'ok',
        (e: Error) => e.name,
      );
    client.destroy();
    assert.equal(refused, 'InvalidArgsException');
    opensslChainOk(out.cert, out.chain, 'ra-leaf');
  });

  it('IntermediateManager swaps PCA intermediates under load with no failed request, riding out an outage', async () => {
    const first = await server({ issueDelayMs: 250 });
    const port = first.api.port;
    const clock = {
      t: Date.now(),
      now() {
        return new Date(this.t);
      },
    };
    const up = upstream(first.api, first.arn, { retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 20 } });
    const m = new IntermediateManager({
      upstream: up,
      ttlSeconds: 4 * 86_400,
      renewBeforeSeconds: 86_400,
      subject: { organization: ['mesh'], commonName: 'managed intermediate' },
      clock,
      manualSchedule: true,
      retry: { initialDelayMs: 1000, maxDelayMs: 1000 },
    });
    await m.start();
    const csrs = Array.from({ length: 8 }, () => csrPem(false));
    const issued = new Map<string, { leaf: ParsedCertificate; chain: ParsedCertificate[]; at: Date }>();
    let ok = 0;
    let failures = 0;
    let running = true;
    const loop = (async () => {
      for (let i = 0; running; i++) {
        try {
          const now = clock.now();
          const out = m.sign({ csr: csrs[i % csrs.length], identities: [SPIFFE], ttlSeconds: 3600, now });
          const chain = out.chain.map((p) => parseCertificate(p));
          if (!issued.has(chain[1].serialHex)) issued.set(chain[1].serialHex, { leaf: chain[0], chain: chain.slice(1), at: now });
          ok++;
        } catch {
          failures++;
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    const before = ok;

    // PCA goes away: the renewal fails, signing carries on with the current intermediate.
    await first.api.close();
    clock.t += 3.1 * DAY;
    await m.tick();
    assert.ok(m.status().lastError, 'the failed renewal is reported');
    assert.match(m.status().lastError!.message, /IssueCertificate|DescribeCertificateAuthority/);
    assert.equal(m.status().generation, 1);
    assert.ok(m.status().remainingSeconds! > 0);
    await new Promise((r) => setTimeout(r, 50));

    // PCA is back on the same address: the next attempt swaps the intermediate under load.
    await server({ addr: `127.0.0.1:${port}`, issueDelayMs: 250 });
    clock.t += 1000;
    await m.tick();
    assert.equal(m.status().lastError, undefined);
    assert.equal(m.status().generation, 2);
    await new Promise((r) => setTimeout(r, 100));
    running = false;
    await loop;
    up.close();

    assert.equal(failures, 0, 'no request failed');
    assert.ok(ok > before, `signing continued (${before} then ${ok})`);
    assert.equal(issued.size, 2, 'leaves from the old and the new intermediate');
    for (const [serial, { leaf, chain, at }] of issued) {
      assert.ok(verifyChain([leaf, ...chain], { now: at, roots: [root], leafIsEndEntity: true }).ok, `chain of ${serial}`);
      opensslChainOk(leaf, chain, `managed-${serial}`, at);
    }
  });

  it('surfaces an unreachable PCA as unavailable after the retries', async () => {
    const { api, arn } = await server();
    const up = upstream(api, arn, { retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 5 } });
    await api.close();
    await assert.rejects(up.check(), (e: unknown) => e instanceof MeshcaError && e.code === 'unavailable');
    up.close();
  });
});
