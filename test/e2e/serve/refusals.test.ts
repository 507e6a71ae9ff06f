import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { LocalTokenIssuer } from '../../../src/auth/index.js';
import { createCsr } from '../../../src/pki/csr.js';
import { generateKeyPair, privateKeyToPem, generateKeyPairWith } from '../../../src/pki/keys.js';
import { decodePemBlocks, encodePem } from '../../../src/pki/pem.js';
import { startServer, type RunningServer } from '../../../src/server/index.js';
import { openSqliteStore } from '../../../src/store/sqlite/index.js';
import { makeIntermediate, makeLeaf, makeRoot } from '../../helpers/pki.js';
import { tempDir } from '../../helpers/tmp.js';
import { IstioCaClient, type CaRequest, type CallOptions } from './ca-client.js';
import { ID, audit, getText, metric, sanUris, workloadCsr } from './helpers.js';

const tmp = tempDir('meshca-serve-refusals-');
let server: RunningServer;
let client: IstioCaClient;
const MAX_CSR = 4096;

before(async () => {
  server = await startServer({
    dir: tmp.path,
    grpcAddr: '127.0.0.1:0',
    httpAddr: '127.0.0.1:0',
    logLevel: 'silent',
    maxCsrBytes: MAX_CSR,
    maxTtl: '90d',
    rateLimit: 0,
  });
  client = IstioCaClient.tls(server.grpcAddress, server.rootPem);
});
after(async () => {
  client?.close();
  await server?.close();
  tmp.cleanup();
});

/** A token signed with the server's own local-issuer key but minted in the past, so it has expired. */
async function expiredToken(ns: string, sa: string): Promise<string> {
  const store = openSqliteStore(tmp.path);
  try {
    const issuer = await LocalTokenIssuer.open(store);
    return await issuer.issue({
      namespace: ns,
      serviceAccount: sa,
      ttlSeconds: 60,
      audience: ['istio-ca'],
      now: new Date(Date.now() - 3600_000),
    });
  } finally {
    await store.close();
  }
}

function badSignatureCsr(uri: string): string {
  const der = decodePemBlocks(workloadCsr(uri).csr)[0].der;
  der[der.length - 5] ^= 0xff; // inside the signature BIT STRING
  return encodePem('CERTIFICATE REQUEST', der);
}

async function expectRefusal(req: CaRequest, o: CallOptions, code: GrpcStatus, detail: RegExp, c = client): Promise<void> {
  await assert.rejects(c.createCertificate(req, o), (e: { code: number; details: string }) => {
    assert.equal(e.code, code, `expected ${GrpcStatus[code]}, got ${GrpcStatus[e.code]}: ${e.details}`);
    assert.match(e.details, detail);
    return true;
  });
}

test('bad-input table: each refusal has its gRPC code, is audited, and issues nothing', async (t) => {
  const token = await server.issueToken({ namespace: 'shop', serviceAccount: 'cart', ttlSeconds: 600 });
  const wrongAudience = await server.issueToken({ namespace: 'shop', serviceAccount: 'cart', audience: ['kubernetes'] });
  const me = ID('shop', 'cart');
  const before = await getText(server.httpAddress, '/metrics');
  const cases: { name: string; req: CaRequest; o: CallOptions; code: GrpcStatus; detail: RegExp; reason: string }[] = [
    {
      name: 'no token',
      req: { csr: workloadCsr(me).csr },
      o: {},
      code: GrpcStatus.UNAUTHENTICATED,
      detail: /no bearer token/,
      reason: 'no_credentials',
    },
    {
      name: 'expired token',
      req: { csr: workloadCsr(me).csr },
      o: { token: await expiredToken('shop', 'cart') },
      code: GrpcStatus.UNAUTHENTICATED,
      detail: /token expired/,
      reason: 'token_expired',
    },
    {
      name: 'wrong audience',
      req: { csr: workloadCsr(me).csr },
      o: { token: wrongAudience },
      code: GrpcStatus.UNAUTHENTICATED,
      detail: /audience .*kubernetes.* istio-ca/,
      reason: 'bad_audience',
    },
    {
      name: 'garbage token',
      req: { csr: workloadCsr(me).csr },
      o: { token: 'abc' },
      code: GrpcStatus.UNAUTHENTICATED,
      detail: /not a JWT/,
      reason: 'malformed_token',
    },
    {
      name: 'CSR for another service account',
      req: { csr: workloadCsr(ID('shop', 'payments')).csr },
      o: { token },
      code: GrpcStatus.PERMISSION_DENIED,
      detail: /ns\/shop\/sa\/payments .* authenticated as .*sa\/cart/,
      reason: 'identity_mismatch',
    },
    {
      name: 'bad CSR signature',
      req: { csr: badSignatureCsr(me) },
      o: { token },
      code: GrpcStatus.INVALID_ARGUMENT,
      detail: /signature does not verify/,
      reason: 'bad_csr_signature',
    },
    {
      name: 'TTL over the maximum',
      req: { csr: workloadCsr(me).csr, ttlSeconds: 91 * 86400 },
      o: { token },
      code: GrpcStatus.INVALID_ARGUMENT,
      detail: /requested TTL 91d \(7862400s\) is above the maximum TTL 90d \(7776000s\)/,
      reason: 'ttl_too_long',
    },
    {
      name: 'oversized CSR',
      req: { csr: workloadCsr(me).csr + '#'.repeat(MAX_CSR) },
      o: { token },
      code: GrpcStatus.INVALID_ARGUMENT,
      detail: /above the 4096-byte limit/,
      reason: 'csr_too_large',
    },
    { name: 'not a CSR', req: { csr: 'hello' }, o: { token }, code: GrpcStatus.INVALID_ARGUMENT, detail: /CSR/, reason: 'bad_pem' },
    {
      name: 'impersonation by a caller not on the allow-list',
      req: { csr: workloadCsr(ID('shop', 'payments')).csr, metadata: { ImpersonatedIdentity: ID('shop', 'payments') } },
      o: { token },
      code: GrpcStatus.PERMISSION_DENIED,
      detail: /may not request certificates for other identities/,
      reason: 'impersonation_denied',
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => expectRefusal(c.req, c.o, c.code, c.detail));
  }

  const rows = await audit(server.httpAddress, '&outcome=refused');
  const reasons = rows.map((r) => r.reason).reverse();
  assert.deepEqual(
    reasons,
    cases.map((c) => c.reason),
    'every refusal audited, in order',
  );
  const mismatch = rows.find((r) => r.reason === 'identity_mismatch')!;
  assert.equal(mismatch.identity, ID('shop', 'payments'), 'the audit names the identity asked for');
  assert.equal(mismatch.caller, me, 'and who asked');
  assert.equal(rows.find((r) => r.reason === 'no_credentials')!.caller, '');
  assert.ok(
    rows.every((r) => r.serial === undefined),
    'no serial on a refusal',
  );
  assert.equal((await audit(server.httpAddress, '&outcome=issued')).length, 0, 'nothing issued');

  const metrics = await getText(server.httpAddress, '/metrics');
  const d = (s: string) => metric(metrics, s) - metric(before, s);
  assert.equal(d('citadel_server_success_cert_issuance_count'), 0);
  assert.equal(d('meshca_certificate_requests_refused_total{reason="identity_mismatch",code="permission_denied"}'), 1);
  assert.equal(d('meshca_certificate_requests_refused_total{reason="token_expired",code="unauthenticated"}'), 1);
  assert.equal(d('citadel_server_csr_sign_err_count{error="ttl_too_long"}'), 1);
  assert.equal(d('citadel_server_authentication_failure_count'), 4);
});

test('per-caller rate limit answers RESOURCE_EXHAUSTED and is audited', async () => {
  const dir = tempDir('meshca-serve-rate-');
  const s = await startServer({
    dir: dir.path,
    grpcAddr: '127.0.0.1:0',
    httpAddr: '127.0.0.1:0',
    logLevel: 'silent',
    rateLimit: 0.5,
    rateBurst: 2,
  });
  const c = IstioCaClient.tls(s.grpcAddress, s.rootPem);
  try {
    const token = await s.issueToken({ namespace: 'a', serviceAccount: 'busy' });
    const other = await s.issueToken({ namespace: 'a', serviceAccount: 'calm' });
    await c.createCertificate({ csr: workloadCsr(ID('a', 'busy')).csr }, { token });
    await c.createCertificate({ csr: workloadCsr(ID('a', 'busy')).csr }, { token });
    await expectRefusal(
      { csr: workloadCsr(ID('a', 'busy')).csr },
      { token },
      GrpcStatus.RESOURCE_EXHAUSTED,
      /over its limit of 0.5 certificate requests per second/,
      c,
    );
    await c.createCertificate({ csr: workloadCsr(ID('a', 'calm')).csr }, { token: other });
    const rows = await audit(s.httpAddress);
    assert.deepEqual(rows.map((r) => `${r.outcome}:${r.reason}:${r.caller.split('/').pop()}`).reverse(), [
      'issued:issued:busy',
      'issued:issued:busy',
      'refused:rate_limited:busy',
      'issued:issued:calm',
    ]);
  } finally {
    c.close();
    await s.close();
    dir.cleanup();
  }
});

test('mTLS renewal: a certificate from this CA renews without a token; one from a foreign CA is refused', async () => {
  const me = ID('shop', 'renew');
  const token = await server.issueToken({ namespace: 'shop', serviceAccount: 'renew' });
  const w = workloadCsr(me);
  const first = await client.createCertificate({ csr: w.csr, ttlSeconds: 3600 }, { token });

  const mtls = IstioCaClient.tls(server.grpcAddress, server.rootPem, {
    certChainPem: first.certChain.slice(0, 2).join(''),
    keyPem: w.keyPem,
  });
  try {
    const renewed = await mtls.createCertificate({ csr: workloadCsr(me).csr, ttlSeconds: 3600 });
    assert.deepEqual(sanUris(renewed.certChain[0]), [me]);
    await expectRefusal(
      { csr: workloadCsr(ID('shop', 'other')).csr },
      {},
      GrpcStatus.PERMISSION_DENIED,
      /authenticated as .*sa\/renew/,
      mtls,
    );
  } finally {
    mtls.close();
  }

  const foreignRoot = makeRoot({ now: new Date(Date.now() - 86400_000) });
  const foreignInter = makeIntermediate(foreignRoot, { now: new Date(Date.now() - 86400_000) });
  const foreignLeaf = makeLeaf(foreignInter, { spiffeId: me, now: new Date() });
  const foreign = IstioCaClient.tls(server.grpcAddress, server.rootPem, {
    certChainPem: foreignLeaf.cert.pem + foreignInter.cert.pem,
    keyPem: privateKeyToPem(foreignLeaf.key),
  });
  try {
    await expectRefusal({ csr: workloadCsr(me).csr }, {}, GrpcStatus.UNAUTHENTICATED, /no client certificate from this CA/, foreign);
  } finally {
    foreign.close();
  }

  const rows = (await audit(server.httpAddress, `&identity=${encodeURIComponent(me)}`)).reverse();
  assert.deepEqual(
    rows.map((r) => `${r.outcome}:${r.method}`),
    ['issued:local-token', 'issued:mtls', 'refused:'],
  );
  assert.equal(rows[2].reason, 'no_credentials');
});

test('an RSA-2048 CSR (the istio-agent default) is accepted; a weak key is refused', async () => {
  const token = await server.issueToken({ namespace: 'shop', serviceAccount: 'rsa' });
  const rsa = generateKeyPair('rsa-2048').privateKey;
  const ok = await client.createCertificate({ csr: createCsr({ key: rsa, sans: { uris: [ID('shop', 'rsa')] } }).pem }, { token });
  assert.deepEqual(sanUris(ok.certChain[0]), [ID('shop', 'rsa')]);
  const weak = generateKeyPairWith('rsa', { modulusLength: 1024 }).privateKey;
  // createCsr itself refuses weak keys, so sign a 1024-bit CSR with openssl.
  const { opensslOk } = await import('../../helpers/openssl.js');
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const kf = join(tmp.path, 'weak.pem');
  writeFileSync(kf, privateKeyToPem(weak));
  const csr = opensslOk(['req', '-new', '-key', kf, '-subj', '/', '-addext', `subjectAltName=URI:${ID('shop', 'rsa')}`]);
  await expectRefusal({ csr }, { token }, GrpcStatus.INVALID_ARGUMENT, /below the 2048-bit minimum/);
});
