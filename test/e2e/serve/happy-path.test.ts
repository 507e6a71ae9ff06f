import { nativeStatus } from '../../../src/pki/fast/native.js';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startServer, type RunningServer } from '../../../src/server/index.js';
import { opensslOk, opensslVerify } from '../../helpers/openssl.js';
import { runMeshca } from '../../helpers/run.js';
import { tempDir } from '../../helpers/tmp.js';
import { IstioCaClient } from './ca-client.js';
import { ID, audit, getJson, getText, metric, sanUris } from './helpers.js';

const tmp = tempDir('meshca-serve-happy-');
let server: RunningServer;

before(async () => {
  server = await startServer({ dir: tmp.path, grpcAddr: '127.0.0.1:0', httpAddr: '127.0.0.1:0', logLevel: 'silent' });
});
after(async () => {
  await server?.close();
  tmp.cleanup();
});

test('token from `meshca token` -> CreateCertificate over TLS -> chain verified by openssl and node', async () => {
  const tok = await runMeshca(['token', '--dir', tmp.path, '--namespace', 'shop', '--service-account', 'cart', '--ttl', '10m']);
  assert.equal(tok.code, 0, tok.stderr);
  const token = tok.stdout.trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);

  // A workload key and CSR made by openssl, as a real agent's would be independent of meshca.
  const keyFile = join(tmp.path, 'w-key.pem');
  opensslOk(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile]);
  const csr = opensslOk(['req', '-new', '-key', keyFile, '-subj', '/', '-addext', `subjectAltName=URI:${ID('shop', 'cart')}`]);

  const metricsBefore = await getText(server.httpAddress, '/metrics');
  // istio-agent checks the server name istiod.istio-system.svc by default.
  const client = IstioCaClient.tls(server.grpcAddress, server.rootPem, { serverName: 'istiod.istio-system.svc' });
  const res = await client.createCertificate(
    { csr, ttlSeconds: 3600, metadata: { ClusterID: 'Kubernetes', WorkloadName: 'cart-1' } },
    { token },
  );
  client.close();

  assert.equal(res.certChain.length, 3, 'leaf, intermediate, root');
  const [leaf, inter, root] = res.certChain.map((p) => new X509Certificate(p));
  assert.deepEqual(sanUris(res.certChain[0]), [ID('shop', 'cart')]);
  assert.equal(leaf.ca, false);
  assert.ok(leaf.checkIssued(inter) && leaf.verify(inter.publicKey), 'leaf signed by the intermediate');
  assert.ok(inter.ca && inter.checkIssued(root) && inter.verify(root.publicKey), 'intermediate signed by the root');
  assert.equal(root.fingerprint256, server.rootFingerprint, 'root last');
  assert.deepEqual(res.roots, [server.rootPem], 'root_cert carries every trusted root');
  const ttl = (new Date(leaf.validTo).getTime() - Date.now()) / 1000;
  assert.ok(ttl > 3500 && ttl <= 3600, `TTL ~1h, got ${ttl}`);

  const leafFile = join(tmp.path, 'leaf.pem');
  const chainFile = join(tmp.path, 'inter.pem');
  const rootFile = join(tmp.path, 'root.pem');
  writeFileSync(leafFile, res.certChain[0]);
  writeFileSync(chainFile, res.certChain[1]);
  writeFileSync(rootFile, res.certChain[2]);
  const v = opensslVerify(rootFile, leafFile, chainFile, ['-purpose', 'sslclient']);
  assert.equal(v.code, 0, v.stderr + v.stdout);

  const metricsAfter = await getText(server.httpAddress, '/metrics');
  const d = (s: string) => metric(metricsAfter, s) - metric(metricsBefore, s);
  assert.equal(d('meshca_certificates_issued_total{method="local-token"}'), 1);
  assert.equal(d('citadel_server_success_cert_issuance_count'), 1);
  assert.equal(d('citadel_server_csr_count'), 1);
  assert.equal(d('meshca_issuance_duration_seconds_count{outcome="issued"}'), 1);
  assert.equal(metric(metricsAfter, 'meshca_inflight_requests'), 0);
  assert.ok(metric(metricsAfter, 'citadel_server_root_cert_expiry_timestamp') > Date.now() / 1000);

  const [row] = await audit(server.httpAddress, `&identity=${encodeURIComponent(ID('shop', 'cart'))}`);
  assert.equal(row.outcome, 'issued');
  assert.equal(row.caller, ID('shop', 'cart'));
  assert.equal(row.method, 'local-token');
  assert.equal(row.serial, leaf.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, ''));
});

test('HTTP: /healthz, /readyz, /v1/ca, /v1/trust-bundle', async () => {
  assert.deepEqual(await getJson(server.httpAddress, '/healthz'), { status: 200, body: { status: 'ok' } });
  assert.deepEqual(await getJson(server.httpAddress, '/readyz'), { status: 200, body: { status: 'ready' } });
  const ca = await getJson<{
    trustDomain: string;
    cluster: string;
    ready: boolean;
    chain: { notAfter: string }[];
    roots: { fingerprint256: string; notAfter: string }[];
    servingCertificate: { sans: string[] };
    nativeSignatureChecks: string;
    audit: string;
  }>(server.httpAddress, '/v1/ca');
  assert.equal(ca.status, 200);
  assert.equal(ca.body.trustDomain, 'cluster.local');
  assert.equal(ca.body.cluster, 'default');
  assert.equal(ca.body.ready, true);
  assert.equal(ca.body.chain.length, 2, 'intermediate and root');
  assert.equal(ca.body.roots[0].fingerprint256, server.rootFingerprint);
  assert.ok(Date.parse(ca.body.roots[0].notAfter) > Date.now());
  assert.deepEqual(ca.body.servingCertificate.sans, ['istiod.istio-system.svc', 'localhost', '127.0.0.1']);
  assert.equal(ca.body.nativeSignatureChecks, nativeStatus, 'the operator can see which signature checks run');
  assert.equal(ca.body.audit, 'on');
  const tb = await getJson<{ roots: string[] }>(server.httpAddress, '/v1/trust-bundle');
  assert.deepEqual(tb.body.roots, [server.rootPem]);
  assert.equal(await getText(server.httpAddress, '/v1/trust-bundle?format=pem'), server.rootPem);
  assert.equal((await getJson(server.httpAddress, '/v1/certificates?limit=0')).status, 400);
  assert.equal((await getJson(server.httpAddress, '/v1/nothing')).status, 404);
});

test('plaintext mode serves without TLS only when asked', async () => {
  const dir = tempDir('meshca-serve-plain-');
  const s = await startServer({ dir: dir.path, grpcAddr: '127.0.0.1:0', httpAddr: '127.0.0.1:0', plaintext: true, logLevel: 'silent' });
  try {
    const { credentials } = await import('@grpc/grpc-js');
    const client = new IstioCaClient(s.grpcAddress, credentials.createInsecure());
    const token = await s.issueToken({ namespace: 'a', serviceAccount: 'b' });
    const { workloadCsr } = await import('./helpers.js');
    const res = await client.createCertificate({ csr: workloadCsr(ID('a', 'b')).csr }, { token });
    client.close();
    assert.equal(res.certChain.length, 3);
    const ttl = (new Date(new X509Certificate(res.certChain[0]).validTo).getTime() - Date.now()) / 1000;
    assert.ok(ttl > 86000 && ttl <= 86400, 'default TTL 24h when none is asked');
  } finally {
    await s.close();
    dir.cleanup();
  }
});
