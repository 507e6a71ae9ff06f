import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { startServer, type RunningServer } from '../../../src/server/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { IstioCaClient } from './ca-client.js';
import { ID, audit, workloadCsr } from './helpers.js';

/**
 * No Kubernetes API server exists here: a stub answers POST /apis/authentication.k8s.io/v1/tokenreviews
 * the way kube-apiserver does, and the kubeconfig points at it.
 */
const tmp = tempDir('meshca-serve-tokenreview-');
const reviews: { auth?: string; body: { spec: { token: string; audiences?: string[] } } }[] = [];
const TOKENS: Record<string, { username: string; audiences: string[] }> = {
  'k8s-token-cart': { username: 'system:serviceaccount:shop:cart', audiences: ['istio-ca'] },
  'k8s-token-user': { username: 'alice', audiences: ['istio-ca'] },
};

const apiServer = createServer((req: IncomingMessage, res) => {
  let text = '';
  req.on('data', (d: Buffer) => (text += d.toString()));
  req.on('end', () => {
    if (req.method !== 'POST' || req.url !== '/apis/authentication.k8s.io/v1/tokenreviews') return res.writeHead(404).end();
    const body = JSON.parse(text) as (typeof reviews)[number]['body'];
    reviews.push({ auth: req.headers.authorization, body });
    const known = TOKENS[body.spec.token];
    const status = known
      ? { authenticated: true, user: { username: known.username, uid: 'u1' }, audiences: known.audiences }
      : { authenticated: false, error: '[invalid bearer token, token lookup failed]' };
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: body.spec, status }));
  });
});

let server: RunningServer;
let client: IstioCaClient;

before(async () => {
  await new Promise<void>((r) => apiServer.listen(0, '127.0.0.1', r));
  const kubeconfig = join(tmp.path, 'kubeconfig');
  writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'current-context: stub',
      'clusters:',
      `- name: stub`,
      `  cluster: { server: "http://127.0.0.1:${(apiServer.address() as AddressInfo).port}" }`,
      'users:',
      '- name: meshca',
      '  user: { token: reviewer-token }',
      'contexts:',
      '- name: stub',
      '  context: { cluster: stub, user: meshca }',
      '',
    ].join('\n'),
  );
  server = await startServer({
    dir: tmp.path,
    grpcAddr: '127.0.0.1:0',
    httpAddr: '127.0.0.1:0',
    logLevel: 'silent',
    kubeconfig,
    localTokens: false,
  });
  client = IstioCaClient.tls(server.grpcAddress, server.rootPem);
});
after(async () => {
  client?.close();
  await server?.close();
  apiServer.close();
  tmp.cleanup();
});

test('TokenReview: a service-account token the API server vouches for is accepted', async () => {
  const res = await client.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr }, { token: 'k8s-token-cart' });
  assert.equal(res.certChain.length, 3);
  const last = reviews[reviews.length - 1];
  assert.equal(last.auth, 'Bearer reviewer-token', 'meshca authenticates to the API server with the kubeconfig credentials');
  assert.deepEqual(last.body.spec.audiences, ['istio-ca'], 'and asks for the istio-ca audience');
  const [row] = await audit(server.httpAddress, `&identity=${encodeURIComponent(ID('shop', 'cart'))}`);
  assert.equal(row.method, 'token-review');
  // A second request within the cache window does not ask the API server again.
  const n = reviews.length;
  await client.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr }, { token: 'k8s-token-cart' });
  assert.equal(reviews.length, n);
});

test('TokenReview: rejected tokens, non-service-account users and disabled local tokens are UNAUTHENTICATED', async () => {
  const reject = async (token: string, detail: RegExp) =>
    assert.rejects(
      client.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr }, { token }),
      (e: { code: number; details: string }) => {
        assert.equal(e.code, GrpcStatus.UNAUTHENTICATED);
        assert.match(e.details, detail);
        return true;
      },
    );
  await reject('forged', /the Kubernetes API rejected the token: \[invalid bearer token/);
  await reject('k8s-token-user', /belongs to alice, not a service account/);
  const local = await server.issueToken({ namespace: 'shop', serviceAccount: 'cart' });
  await reject(local, /issuer "meshca-local" is not trusted/);
  const reasons = (await audit(server.httpAddress, '&outcome=refused')).map((r) => r.reason).reverse();
  assert.deepEqual(reasons, ['token_review_denied', 'no_service_account', 'untrusted_issuer']);
});
