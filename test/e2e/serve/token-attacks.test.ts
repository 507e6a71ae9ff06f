import assert from 'node:assert/strict';
import { createHmac, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { SignJWT, exportJWK } from 'jose';
import { createCsr } from '../../../src/pki/csr.js';
import { generateKeyPair } from '../../../src/pki/keys.js';
import { startServer, type RunningServer } from '../../../src/server/index.js';
import { openSqliteStore } from '../../../src/store/sqlite/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { IstioCaClient, type CaRequest, type CallOptions } from './ca-client.js';
import { ID, audit, getText, metric, workloadCsr } from './helpers.js';

/**
 * Hostile tokens through the real gRPC server: each is refused UNAUTHENTICATED, audited as
 * refused, and no certificate comes out. The local issuer's own signing key and a JWKS file's
 * key sign the claim-injection tokens, so only the claims are at fault.
 */
const tmp = tempDir('meshca-serve-token-attacks-');
const JWKS_ISSUER = 'https://jwks.example';
const jwksKey = generateKeyPair('ec-p256');
let server: RunningServer;
let client: IstioCaClient;
let localKey: KeyObject;
let localKid: string;

before(async () => {
  const jwksFile = join(tmp.path, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(jwksKey.publicKey)), kid: 'j1', alg: 'ES256', use: 'sig' }] }));
  server = await startServer({
    dir: tmp.path,
    grpcAddr: '127.0.0.1:0',
    httpAddr: '127.0.0.1:0',
    logLevel: 'silent',
    rateLimit: 0,
    jwksFile,
    jwksIssuer: JWKS_ISSUER,
  });
  client = IstioCaClient.tls(server.grpcAddress, server.rootPem);
  const store = openSqliteStore(tmp.path);
  try {
    const [row] = await store.listTokenKeys();
    localKey = createPrivateKey(row.privateKeyPem);
    localKid = row.kid;
  } finally {
    await store.close();
  }
});
after(async () => {
  client?.close();
  await server?.close();
  tmp.cleanup();
});

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
const exp = (): number => Math.floor(Date.now() / 1000) + 600;
const k8s = (ns: string, sa: string) => ({ 'kubernetes.io': { namespace: ns, serviceaccount: { name: sa } } });

function local(
  claims: Record<string, unknown>,
  o: { aud?: string; expSeconds?: number; kid?: string; key?: KeyObject } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: o.kid ?? localKid, typ: 'JWT' })
    .setIssuer('meshca-local')
    .setAudience(o.aud ?? 'istio-ca')
    .setExpirationTime(o.expSeconds ?? exp())
    .sign(o.key ?? localKey);
}

function jwks(claims: Record<string, unknown>, iss = JWKS_ISSUER): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: 'j1' })
    .setIssuer(iss)
    .setAudience('istio-ca')
    .setExpirationTime(exp())
    .sign(jwksKey.privateKey);
}

/** HS256 keyed with a public key's PEM: the classic algorithm confusion. */
function hs256WithPublicKey(publicKey: KeyObject, header: Record<string, unknown>, claims: Record<string, unknown>): string {
  const head = `${b64({ ...header, alg: 'HS256' })}.${b64(claims)}`;
  return `${head}.${createHmac('sha256', publicKey.export({ type: 'spki', format: 'pem' }))
    .update(head)
    .digest('base64url')}`;
}

async function expectRefusal(req: CaRequest, o: CallOptions, code: GrpcStatus, what: string): Promise<void> {
  await assert.rejects(client.createCertificate(req, o), (e: { code: number; details: string }) => {
    assert.equal(e.code, code, `${what}: expected ${GrpcStatus[code]}, got ${GrpcStatus[e.code]}: ${e.details}`);
    return true;
  });
}

test('hostile tokens are refused UNAUTHENTICATED, audited, and issue nothing', async (t) => {
  const me = ID('default', 'web');
  const base = { ...k8s('default', 'web'), iss: 'meshca-local', aud: 'istio-ca', exp: exp() };
  const cases: { name: string; token: string; reason: string }[] = [
    { name: 'alg none', token: `${b64({ alg: 'none', typ: 'JWT', kid: localKid })}.${b64(base)}.`, reason: 'bad_token_alg' },
    {
      name: 'HS256 keyed with the local issuer public key',
      token: hs256WithPublicKey(createPublicKey(localKey), { kid: localKid }, base),
      reason: 'bad_token_alg',
    },
    {
      name: 'HS256 keyed with the JWKS public key',
      token: hs256WithPublicKey(jwksKey.publicKey, { kid: 'j1' }, { ...base, iss: JWKS_ISSUER }),
      reason: 'bad_token_alg',
    },
    {
      name: 'expired',
      token: await local(k8s('default', 'web'), { expSeconds: Math.floor(Date.now() / 1000) - 60 }),
      reason: 'token_expired',
    },
    { name: 'wrong audience', token: await local(k8s('default', 'web'), { aud: 'kubernetes' }), reason: 'bad_audience' },
    {
      name: 'foreign kid signed by another ES256 key',
      token: await local(k8s('default', 'web'), { kid: 'foreign', key: generateKeyPair('ec-p256').privateKey }),
      reason: 'unknown_token_key',
    },
    { name: 'untrusted issuer', token: await jwks(k8s('default', 'web'), 'https://evil.example'), reason: 'untrusted_issuer' },
    {
      name: 'namespace smuggling a SPIFFE path (local)',
      token: await local(k8s('evil/sa/x/ns/istio-system', 'y')),
      reason: 'bad_namespace',
    },
    { name: 'namespace smuggling a SPIFFE path (JWKS)', token: await jwks(k8s('evil/sa/x/ns/istio-system', 'y')), reason: 'bad_namespace' },
    { name: 'service account with /', token: await local(k8s('default', 'a/b')), reason: 'bad_service_account' },
    { name: 'service account with :', token: await local(k8s('default', 'a:b')), reason: 'bad_service_account' },
    { name: 'uppercase service account', token: await local(k8s('default', 'Web')), reason: 'bad_service_account' },
    { name: 'empty service account', token: await local(k8s('default', '')), reason: 'bad_service_account' },
    { name: '300-character service account', token: await local(k8s('default', 'a'.repeat(300))), reason: 'bad_service_account' },
    { name: 'service account ..', token: await local(k8s('default', '..')), reason: 'bad_service_account' },
    {
      name: 'sub with extra colons',
      token: await jwks({ sub: 'system:serviceaccount:istio-system:istiod:x' }),
      reason: 'no_service_account',
    },
  ];
  const before = await getText(server.httpAddress, '/metrics');
  for (const c of cases) {
    await t.test(c.name, () => expectRefusal({ csr: workloadCsr(me).csr }, { token: c.token }, GrpcStatus.UNAUTHENTICATED, c.name));
  }
  const rows = await audit(server.httpAddress, '&outcome=refused');
  assert.deepEqual(
    rows.map((r) => r.reason).reverse(),
    cases.map((c) => c.reason),
    'every refusal audited, in order',
  );
  assert.ok(rows.every((r) => r.caller === '' && r.serial === undefined));
  assert.equal((await audit(server.httpAddress, '&outcome=issued')).length, 0, 'nothing issued');
  const metrics = await getText(server.httpAddress, '/metrics');
  const d = (s: string) => metric(metrics, s) - metric(before, s);
  assert.equal(d('meshca_certificates_issued_total{method="local-token"}') + d('meshca_certificates_issued_total{method="jwks"}'), 0);
  assert.equal(d('citadel_server_success_cert_issuance_count'), 0);
  assert.equal(d('citadel_server_authentication_failure_count'), cases.length);
});

test('a CSR asking for CA powers and a bad ClusterID are refused INVALID_ARGUMENT with a valid token', async () => {
  const me = ID('default', 'ca-asker');
  const token = await server.issueToken({ namespace: 'default', serviceAccount: 'ca-asker' });
  const caCsr = createCsr({ key: generateKeyPair('ec-p256').privateKey, sans: { uris: [me] }, isCA: true }).pem;
  await expectRefusal({ csr: caCsr }, { token }, GrpcStatus.INVALID_ARGUMENT, 'CA:TRUE');
  await expectRefusal(
    { csr: workloadCsr(me).csr, metadata: { ClusterID: 'east\nreason=issued' } },
    { token },
    GrpcStatus.INVALID_ARGUMENT,
    'ClusterID metadata',
  );
  await expectRefusal(
    { csr: workloadCsr(me).csr },
    { token, headers: { clusterid: 'x'.repeat(300) } },
    GrpcStatus.INVALID_ARGUMENT,
    'clusterid header',
  );
  const rows = (await audit(server.httpAddress, `&identity=${encodeURIComponent(me)}`)).reverse();
  assert.deepEqual(
    rows.map((r) => [r.outcome, r.reason, r.caller]),
    [
      ['refused', 'ca_not_allowed', me],
      ['refused', 'bad_cluster_id', me],
      ['refused', 'bad_cluster_id', me],
    ],
  );
  assert.equal(rows[1].clientCluster, 'east\\nreason=issued', 'escaped, not raw');
  assert.ok((rows[2].clientCluster ?? '').length <= 203, 'truncated');
});

test('a flood of unauthenticated refusals writes a bounded number of audit rows and one summary', async () => {
  const dir = tempDir('meshca-serve-flood-');
  const s = await startServer({
    dir: dir.path,
    grpcAddr: '127.0.0.1:0',
    httpAddr: '127.0.0.1:0',
    logLevel: 'silent',
    unauthenticatedAuditRate: 1,
    unauthenticatedAuditBurst: 3,
  });
  const c = IstioCaClient.tls(s.grpcAddress, s.rootPem);
  try {
    const csr = workloadCsr(ID('a', 'b')).csr;
    await Promise.allSettled(Array.from({ length: 40 }, () => c.createCertificate({ csr }, { token: 'garbage' })));
    const token = await s.issueToken({ namespace: 'a', serviceAccount: 'b' });
    await c.createCertificate({ csr }, { token });
    await assert.rejects(c.createCertificate({ csr: workloadCsr(ID('a', 'other')).csr }, { token }));
    await new Promise((r) => setTimeout(r, 1300));
    const rows = (await audit(s.httpAddress)).reverse();
    const malformed = rows.filter((r) => r.reason === 'malformed_token').length;
    assert.ok(malformed >= 3 && malformed <= 5, `${malformed} rows for 40 refusals`);
    assert.ok(
      rows.some((r) => r.reason === 'issued') && rows.some((r) => r.reason === 'identity_mismatch'),
      'authenticated outcomes are always audited',
    );
    const summaries = rows.filter((r) => r.reason === 'refusals_suppressed');
    assert.equal(summaries.length, 1);
    assert.match(
      summaries[0].message ?? '',
      new RegExp(
        `^${40 - malformed} unauthenticated refusals not audited individually since \\S+; reasons: malformed_token=${40 - malformed}$`,
      ),
    );
    const metrics = await getText(s.httpAddress, '/metrics');
    assert.equal(metric(metrics, 'meshca_audit_suppressed_total{reason="malformed_token"}'), 40 - malformed);
    assert.equal(
      metric(metrics, 'meshca_certificate_requests_refused_total{reason="malformed_token",code="unauthenticated"}'),
      40,
      'every refusal is still counted',
    );
  } finally {
    c.close();
    await s.close();
    dir.cleanup();
  }
});
