import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ACMPCAClient, DescribeCertificateAuthorityCommand, ListCertificateAuthoritiesCommand } from '@aws-sdk/client-acm-pca';
import { CaState } from '../../src/ca/state.js';
import { createCsr } from '../../src/pki/csr.js';
import { generateKeyPair } from '../../src/pki/keys.js';
import { startPcaApi, type PcaApiHandle, type PcaCallRecord } from '../../src/server/pca/index.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { opensslVerify } from '../helpers/openssl.js';
import { runMeshca } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { startPcaApiProcess, type PcaApiProcess } from './pca-helpers.js';
import { IstioCaClient } from './serve/ca-client.js';
import { ID, audit, getJson, metric, getText, spawnServe, workloadCsr } from './serve/helpers.js';

const KEY = { id: 'AKIDMESHCASERVE01', secret: 'meshca-serve-secret-0123456789' };
const CREDS = { AWS_ACCESS_KEY_ID: KEY.id, AWS_SECRET_ACCESS_KEY: KEY.secret, AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' };
const DAY = 86_400_000;
// The SDK (in this process and in the children) finds its credentials where every AWS program does.
Object.assign(process.env, CREDS);
delete process.env.AWS_SESSION_TOKEN;
delete process.env.AWS_PROFILE;
delete process.env.AWS_ENDPOINT_URL;

const ADDRS = ['--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--log-level', 'warn'];

async function token(dir: string, ns: string, sa: string): Promise<string> {
  const r = await runMeshca(['token', '--dir', dir, '-n', ns, '-s', sa, '--ttl', '10m']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

interface ReadyBody {
  status: string;
  upstream?: {
    type: string;
    arn: string;
    mode: string;
    ready: boolean;
    serial?: string;
    notAfter: string;
    remainingSeconds: number;
    lastError: unknown;
  };
}

describe('meshca serve --upstream awspca, with meshca as the AWS Private CA', () => {
  const tmp = tempDir('meshca-serve-awspca-');
  const upDir = join(tmp.path, 'pca');
  let pca: PcaApiProcess;
  let rootPem: string;
  let arn: string;

  before(async () => {
    const init = await runMeshca(['init', '--dir', upDir, '--key-algorithm', 'ec-p256', '--org', 'corp', '--cn', 'Corp PCA root']);
    assert.equal(init.code, 0, init.stderr);
    rootPem = readFileSync(join(upDir, 'root', 'root-cert.pem'), 'utf8');
    pca = await startPcaApiProcess(['--dir', upDir, '--pca-access-key', `${KEY.id}:${KEY.secret}`]);
    arn = pca.arns[0];
  });
  after(async () => {
    await pca?.stop();
    tmp.cleanup();
  });

  it('intermediate mode: the intermediate comes from PCA, workload certificates chain to the PCA root, a restart reuses it', async () => {
    const dir = join(tmp.path, 'mesh');
    const args = ['--dir', dir, ...ADDRS, '--upstream', 'awspca', '--awspca-arn', arn, '--awspca-endpoint-url', pca.url];
    const issues = () => (pca.output().match(/ IssueCertificate 200/g) ?? []).length;
    const s1 = spawnServe(args, CREDS);
    const a = await s1.ready;
    assert.equal(a.createdRoot, false, 'no root is made in the mesh state dir');
    assert.equal(existsSync(join(dir, 'root', 'root-key.pem')), false);
    assert.equal(a.rootFingerprint, new X509Certificate(rootPem).fingerprint256, 'the PCA root is the mesh root');
    assert.equal(issues(), 1);

    const t = await token(dir, 'shop', 'cart');
    const client = IstioCaClient.tls(a.grpc, rootPem, { serverName: 'istiod.istio-system.svc' });
    const res = await client.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr, ttlSeconds: 3600 }, { token: t });
    client.close();
    assert.equal(res.certChain.length, 3, 'leaf, meshca intermediate, PCA root');
    assert.deepEqual(res.roots, [rootPem]);
    const [, inter] = res.certChain.map((p) => new X509Certificate(p));
    assert.ok(inter.ca && inter.checkIssued(new X509Certificate(rootPem)), 'the intermediate is signed by the PCA CA');
    assert.match(inter.subject, /CN=meshca intermediate default/);
    writeFileSync(join(tmp.path, 'root.pem'), rootPem);
    writeFileSync(join(tmp.path, 'leaf.pem'), res.certChain[0]);
    writeFileSync(join(tmp.path, 'inter.pem'), res.certChain[1]);
    const v = opensslVerify(join(tmp.path, 'root.pem'), join(tmp.path, 'leaf.pem'), join(tmp.path, 'inter.pem'), ['-purpose', 'sslclient']);
    assert.equal(v.code, 0, v.stderr + v.stdout);

    const ready = await getJson<ReadyBody>(a.http, '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.upstream?.arn, arn);
    assert.equal(ready.body.upstream?.ready, true);
    assert.equal(ready.body.upstream?.serial, inter.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, ''));
    assert.equal(ready.body.upstream?.lastError, null);
    const m = await getText(a.http, '/metrics');
    assert.equal(metric(m, 'meshca_intermediate_renewals_total'), 1);
    assert.ok(metric(m, 'meshca_intermediate_remaining_seconds') > 300 * 86_400);
    assert.equal(existsSync(join(dir, 'clusters', 'default', 'cacerts', 'ca-cert.pem')), true, 'the bundle is persisted');
    assert.equal(await s1.stop(), 0, s1.stderr());

    // A restart finds the PCA-issued bundle on disk and asks PCA for nothing.
    const s2 = spawnServe(args, CREDS);
    const b = await s2.ready;
    try {
      const again = await getJson<ReadyBody>(b.http, '/readyz');
      assert.equal(again.body.upstream?.serial, ready.body.upstream?.serial);
      assert.equal(issues(), 1, 'no IssueCertificate after the restart');
      const c2 = IstioCaClient.tls(b.grpc, rootPem);
      const res2 = await c2.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr }, { token: t });
      c2.close();
      assert.equal(res2.certChain[1], res.certChain[1], 'same intermediate');
    } finally {
      assert.equal(await s2.stop(), 0, s2.stderr());
    }
  });

  it('serve --pca-api-addr answers the SDK (ListCertificateAuthorities, DescribeCertificateAuthority) and refuses to run open', async () => {
    const dir = join(tmp.path, 'host');
    const s = spawnServe([
      '--dir',
      dir,
      ...ADDRS,
      '--key-algorithm',
      'ec-p256',
      '--pca-api-addr',
      '127.0.0.1:0',
      '--pca-access-key',
      `${KEY.id}:${KEY.secret}`,
    ]);
    const r = (await s.ready) as Awaited<typeof s.ready> & { pcaApi?: string };
    try {
      assert.match(r.pcaApi ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
      const sdk = new ACMPCAClient({ region: 'us-east-1', endpoint: r.pcaApi, maxAttempts: 1 });
      const list = await sdk.send(new ListCertificateAuthoritiesCommand({}));
      const root = list.CertificateAuthorities?.find((c) => c.Type === 'ROOT');
      assert.ok(root?.Arn, JSON.stringify(list.CertificateAuthorities));
      const d = await sdk.send(new DescribeCertificateAuthorityCommand({ CertificateAuthorityArn: root.Arn }));
      sdk.destroy();
      assert.equal(d.CertificateAuthority?.Status, 'ACTIVE');
      assert.equal(d.CertificateAuthority?.Type, 'ROOT');
      assert.equal(d.CertificateAuthority?.CertificateAuthorityConfiguration?.KeyAlgorithm, 'EC_prime256v1');
      // The same process still serves the Istio CA API.
      const rootPemHost = await getText(r.http, '/v1/trust-bundle?format=pem');
      const c = IstioCaClient.tls(r.grpc, rootPemHost);
      await c.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr }, { token: await token(dir, 'shop', 'cart') });
      c.close();
    } finally {
      assert.equal(await s.stop(), 0, s.stderr());
    }
    const open = await runMeshca(['serve', '--dir', dir, ...ADDRS, '--pca-api-addr', '127.0.0.1:0']);
    assert.notEqual(open.code, 0);
    assert.match(open.stderr, /needs access keys \(--pca-access-key/);
    const wide = await runMeshca(['serve', '--dir', dir, ...ADDRS, '--pca-api-addr', '0.0.0.0:0', '--pca-insecure']);
    assert.notEqual(wide.code, 0);
    assert.match(wide.stderr, /only allowed on a loopback address/);
  });
});

describe('meshca serve --upstream awspca --upstream-mode ra: every workload CSR goes to PCA', () => {
  const tmp = tempDir('meshca-serve-awspca-ra-');
  let api: PcaApiHandle;
  let server: RunningServer;
  let rootPem: string;
  const calls: PcaCallRecord[] = [];
  const issueCalls = () => calls.filter((c) => c.operation === 'IssueCertificate').length;

  before(async () => {
    const state = new CaState(join(tmp.path, 'pca'));
    rootPem = state.initRoot({ alg: 'ec-p256', subject: { organization: ['corp'], commonName: 'Short-lived PCA' }, now: new Date() }).pem;
    api = await startPcaApi({
      state,
      addr: '127.0.0.1:0',
      accessKeys: [KEY],
      usageMode: 'SHORT_LIVED_CERTIFICATE',
      onCall: (r) => calls.push(r),
    });
    server = await startServer({
      dir: join(tmp.path, 'mesh'),
      grpcAddr: '127.0.0.1:0',
      httpAddr: '127.0.0.1:0',
      logLevel: 'silent',
      upstream: 'awspca',
      upstreamMode: 'ra',
      awspcaArn: api.cas()[0].arn,
      awspcaEndpointUrl: api.url,
    });
  });
  after(async () => {
    await server?.close();
    await api?.close();
    tmp.cleanup();
  });

  it('signs at PCA (issuer = the PCA CA), capped at 7 days; mTLS renewal works with the PCA certificate', async () => {
    assert.equal(server.rootPem, rootPem);
    assert.equal(existsSync(join(tmp.path, 'mesh', 'root')), false, 'no CA key anywhere in the mesh state dir');
    assert.equal(existsSync(join(tmp.path, 'mesh', 'clusters')), false);
    const t = await server.issueToken({ namespace: 'shop', serviceAccount: 'cart' });
    const client = IstioCaClient.tls(server.grpcAddress, rootPem);
    const before = issueCalls();
    const w = workloadCsr(ID('shop', 'cart'));
    const res = await client.createCertificate({ csr: w.csr, ttlSeconds: 30 * 86_400 }, { token: t });
    assert.equal(issueCalls(), before + 1, 'one IssueCertificate per workload certificate');
    assert.equal(res.certChain.length, 2, 'leaf and PCA root');
    assert.deepEqual(res.roots, [rootPem]);
    const leaf = new X509Certificate(res.certChain[0]);
    const root = new X509Certificate(rootPem);
    assert.equal(leaf.issuer, root.subject, 'issued directly by the PCA CA');
    assert.ok(leaf.verify(root.publicKey));
    assert.equal(leaf.subjectAltName, `URI:${ID('shop', 'cart')}`);
    const life = new Date(leaf.validTo).getTime() - Date.now();
    assert.ok(life <= 7 * DAY && life > 7 * DAY - 120_000, `capped at 7 days, got ${life / DAY} days`);

    const rows = await audit(server.httpAddress, `&identity=${encodeURIComponent(ID('shop', 'cart'))}`);
    assert.equal(rows[0].outcome, 'issued');
    assert.equal(rows[0].serial, leaf.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, ''));

    // Renewal by the PCA-issued certificate itself, as istio-agent does.
    const mtls = IstioCaClient.tls(server.grpcAddress, rootPem, { certChainPem: res.certChain[0], keyPem: w.keyPem });
    const renewed = await mtls.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr, ttlSeconds: 3600 });
    mtls.close();
    client.close();
    assert.equal(new X509Certificate(renewed.certChain[0]).subjectAltName, `URI:${ID('shop', 'cart')}`);
    const methods = (await audit(server.httpAddress, '&outcome=issued')).map((r) => r.method);
    assert.ok(methods.includes('mtls'), methods.join(','));

    const ready = await getJson<ReadyBody>(server.httpAddress, '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.body.upstream?.mode, 'ra');
    assert.equal(ready.body.upstream?.lastError, null);
  });

  it('the agent says once that --ttl 30d was granted as 7 days, and a wrong --ca-root is named', async () => {
    const out = join(tmp.path, 'agent-out');
    const tokenFile = join(tmp.path, 'agent-token');
    writeFileSync(tokenFile, await server.issueToken({ namespace: 'shop', serviceAccount: 'cart' }));
    const rootFile = join(tmp.path, 'pca-root.pem');
    writeFileSync(rootFile, rootPem);
    // A fresh --out each time: the agent also trusts the roots it wrote there on its last success.
    const agent = (root: string, dir: string) =>
      runMeshca([
        'agent',
        '--once',
        '--ca-addr',
        server.grpcAddress,
        '--ca-root',
        root,
        '--token-file',
        tokenFile,
        '--out',
        dir,
        '--ttl',
        '30d',
      ]);
    const ok = await agent(rootFile, out);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stderr.match(/warning: /g)?.length, 1, ok.stderr);
    assert.match(ok.stderr, /requested --ttl 30d but the CA granted about 7d/);
    const leaf = new X509Certificate(readFileSync(join(out, 'cert-chain.pem')));
    assert.ok(new Date(leaf.validTo).getTime() - Date.now() <= 7 * DAY);

    const wrongFile = join(tmp.path, 'other-root.pem');
    writeFileSync(wrongFile, new CaState(join(tmp.path, 'other')).initRoot({ alg: 'ec-p256', now: new Date() }).pem);
    const bad = await agent(wrongFile, join(tmp.path, 'agent-out-2'));
    assert.notEqual(bad.code, 0);
    assert.ok(bad.stderr.includes(`--ca-root ${wrongFile}: that file does not contain the CA's root`), bad.stderr);
  });

  it('refuses a CSR for another identity, or with no identity, before anything reaches PCA', async () => {
    const t = await server.issueToken({ namespace: 'shop', serviceAccount: 'cart' });
    const client = IstioCaClient.tls(server.grpcAddress, rootPem);
    const before = calls.length;
    await assert.rejects(
      client.createCertificate({ csr: workloadCsr(ID('shop', 'admin')).csr }, { token: t }),
      (e: { code?: number; details?: string }) => {
        assert.equal(e.code, 7, 'PERMISSION_DENIED');
        assert.match(e.details ?? '', /identity/);
        return true;
      },
    );
    const bare = createCsr({ key: generateKeyPair('ec-p256').privateKey, subject: { commonName: 'cart' } }).pem;
    await assert.rejects(
      client.createCertificate({ csr: bare }, { token: t }),
      (e: { code?: number; details?: string }) => e.code === 3 && /exactly one SPIFFE ID/.test(e.details ?? ''),
    );
    await assert.rejects(
      client.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr, ttlSeconds: 200 * 86_400 }, { token: t }),
      /maximum TTL/,
    );
    client.close();
    assert.equal(
      calls.length,
      before,
      `no PCA call for a refused request: ${calls
        .slice(before)
        .map((c) => c.operation)
        .join(',')}`,
    );
    const refused = await audit(server.httpAddress, '&outcome=refused');
    assert.ok(refused.some((r) => r.reason === 'identity_mismatch' && r.identity === ID('shop', 'admin')));
  });
});
