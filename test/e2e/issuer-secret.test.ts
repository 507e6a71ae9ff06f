/**
 * istio-csr's role, end to end with the istio-on-eks guide's manifests: `meshca serve
 * --issuer-secret istio-system/istio-ca` signs workloads with the key pair of the istio-ca
 * Certificate that its own controllers issue through an AWSPCAClusterIssuer pointing at `meshca
 * pca-api`, and follows each renewal live (no restart, no failed request), once as a single
 * process and once with gRPC workers. Then the refusals: a Secret that cannot sign keeps serve
 * not ready, with the reason on /readyz, until it is fixed.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { parse as parseYaml } from 'yaml';
import { secretManifest } from '../../src/ca/bundle.js';
import { expandShellVars } from '../fixtures/manifests/expand.js';
import { openssl, opensslGenKey, opensslIntermediate, opensslRoot, type OpensslResult } from '../helpers/openssl.js';
import { REPO_ROOT, runMeshca, ok } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { startPcaApiProcess, type PcaApiProcess } from './pca-helpers.js';
import { IstioCaClient } from './serve/ca-client.js';
import { spawnMeshca, waitFor, type Child } from './reload-helpers.js';
import { ID, getJson, workloadCsr } from './serve/helpers.js';

const KEY_ID = 'AKIDISTIOONEKS01';
const SECRET = 'istio-on-eks-test-secret';
const SERVER_NAME = 'istiod.istio-system.svc';

const tmp = tempDir('meshca-issuer-secret-');
const children: { stop(): Promise<unknown> }[] = [];
after(async () => {
  for (const c of children) await c.stop();
  tmp.cleanup();
});

interface Ready {
  status: string;
  reason?: string;
  upstream?: { type: string; secret: string; ready: boolean; serial: string | null; lastError: { message: string } | null };
}

const readyz = (http: string) => getJson<Ready>(http, '/readyz');

/** openssl verify -CAfile root -untrusted istio-ca leaf, from PEM texts. */
function opensslChain(dir: string, rootPem: string, caPem: string, leafPem: string): OpensslResult {
  const f = (n: string, t: string) => {
    const p = join(dir, n);
    writeFileSync(p, t);
    return p;
  };
  return openssl(['verify', '-CAfile', f('root.pem', rootPem), '-untrusted', f('istio-ca.pem', caPem), f('leaf.pem', leafPem)]);
}

describe('istio-on-eks: serve signs with the istio-ca Certificate issued through AWS PCA, renewed live', () => {
  let pca: PcaApiProcess;
  let pcaRoot: string;
  let manifest: string;
  const env: Record<string, string> = {};

  before(async () => {
    const pcaDir = join(tmp.path, 'pca');
    ok(
      await runMeshca(['init', '--dir', pcaDir, '--key-algorithm', 'rsa-2048', '--org', 'Amazon', '--cn', 'istio-on-eks-04-security']),
      'init',
    );
    pca = await startPcaApiProcess(['--dir', pcaDir, '--pca-access-key', `${KEY_ID}:${SECRET}`]);
    children.push(pca);
    pcaRoot = readFileSync(join(pcaDir, 'root', 'root-cert.pem'), 'utf8');
    Object.assign(env, {
      AWS_ENDPOINT_URL: pca.url,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: join(tmp.path, 'aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(tmp.path, 'aws-credentials'),
    });
    const seed = readFileSync(join(REPO_ROOT, 'test', 'fixtures', 'manifests', 'istio-on-eks.yaml'), 'utf8');
    const vars = { ROOT_CA_ARN: pca.arns[0], AWS_REGION: 'us-east-1', PCA_ACCESS_KEY_ID: KEY_ID, PCA_SECRET_ACCESS_KEY: SECRET };
    // The seed's seven days with a 6h margin, shortened so that serve's own controllers renew
    // istio-ca about every 15 s while the test watches.
    const short = expandShellVars(seed, vars)
      .replace('duration: 168h', 'duration: 1h')
      .replace('renewBefore: 6h0m0s', 'renewBefore: 59m45s');
    assert.match(short, /duration: 1h #/);
    assert.match(short, /renewBefore: 59m45s #/);
    manifest = join(tmp.path, 'istio-on-eks.yaml');
    writeFileSync(manifest, short);
  });

  for (const workers of [1, 2]) {
    it(`workers ${workers}: not ready before the Secret, then leaf -> istio-ca -> PCA root across renewals, zero failures`, async () => {
      const dir = join(tmp.path, `state-${workers}`);
      const meshca = (args: string[]) => runMeshca([...args, '--dir', dir], { env, timeoutMs: 60_000 });
      const serve = spawnMeshca(
        [
          'serve',
          '--dir',
          dir,
          '--issuer-secret',
          'istio-system/istio-ca',
          '--rate-limit',
          '0',
          '--workers',
          String(workers),
          '--grpc-addr',
          '127.0.0.1:0',
          '--http-addr',
          '127.0.0.1:0',
        ],
        { env, killAfterMs: 240_000 },
      );
      children.push(serve);
      const listening = await serve.ready;
      const grpcAddr = listening.grpc as string;
      const http = listening.http as string;

      // Nothing applied yet: serve runs, but says what it waits for.
      const first = await readyz(http);
      assert.equal(first.status, 503);
      assert.match(first.body.reason ?? '', /^secret istio-system\/istio-ca not found \(no tls\.crt, tls\.key, ca\.crt in .*\)$/);
      assert.equal(first.body.upstream?.ready, false);
      // The stand-in CA it starts with is never published as a root.
      for (const path of ['/v1/trust-bundle', '/v1/ca']) {
        const r = await getJson<{ error?: string }>(http, path);
        assert.equal(r.status, 503, path);
        assert.equal(r.body.error, 'ca_not_ready', path);
      }

      ok(await meshca(['apply', '-f', manifest]), 'apply');
      const secretDir = join(dir, 'secrets', 'istio-system', 'istio-ca');
      const ready = await waitFor('ready', async () => {
        const r = await readyz(http);
        return r.status === 200 ? r.body : undefined;
      });
      assert.equal(ready.upstream?.type, 'issuer-secret');
      assert.equal(readFileSync(join(secretDir, 'ca.crt'), 'utf8'), pcaRoot, "the Secret's ca.crt is the PCA root");
      const bundle = await getJson<{ roots: string[] }>(http, '/v1/trust-bundle');
      assert.equal(bundle.status, 200);
      assert.deepEqual(bundle.body.roots, [pcaRoot], 'once ready, the trust bundle is the PCA root');

      // An agent, as a sidecar would: its chain verifies leaf -> istio-ca -> PCA root with openssl.
      const token = (await runMeshca(['token', '--dir', dir, '-n', 'workshop', '-s', 'frontend-sa'])).stdout.trim();
      writeFileSync(join(tmp.path, `token-${workers}`), token);
      const out = join(tmp.path, `agent-${workers}`);
      const caRoot = join(tmp.path, `pca-root-${workers}.pem`);
      writeFileSync(caRoot, pcaRoot);
      ok(
        await runMeshca([
          'agent',
          '--ca-addr',
          grpcAddr,
          '--ca-root',
          caRoot,
          '--token-file',
          join(tmp.path, `token-${workers}`),
          '--out',
          out,
          '--once',
        ]),
        'agent',
      );
      const agentChain = readFileSync(join(out, 'cert-chain.pem'), 'utf8');
      const [leafPem, caPem] = agentChain.split(/(?<=-----END CERTIFICATE-----\n)/);
      const v = opensslChain(tmp.path, pcaRoot, caPem, leafPem);
      assert.equal(v.code, 0, v.stderr + v.stdout);
      const leaf = new X509Certificate(leafPem);
      assert.equal(leaf.issuer, 'O=cert-manager\nCN=istio-ca');
      assert.equal(leaf.subjectAltName, 'URI:spiffe://cluster.local/ns/workshop/sa/frontend-sa');
      const firstCa = new X509Certificate(caPem);

      // Continuous issuance while serve's controllers renew istio-ca: every answer must succeed.
      const seen = new Map<string, string[]>();
      const failures: string[] = [];
      let requests = 0;
      let stopping = false;
      const client = async (n: number) => {
        let c = IstioCaClient.tls(grpcAddr, pcaRoot, { serverName: SERVER_NAME });
        for (let i = 0; !stopping; i++) {
          // New connections meet the current serving certificate too.
          if (i > 0 && i % 20 === 0) {
            c.close();
            c = IstioCaClient.tls(grpcAddr, pcaRoot, { serverName: SERVER_NAME });
          }
          requests++;
          try {
            const r = await c.createCertificate({ csr: workloadCsr(ID('workshop', 'frontend-sa')).csr }, { token });
            if (!seen.has(r.certChain[1])) seen.set(r.certChain[1], r.certChain);
          } catch (e) {
            failures.push(`client ${n}: ${(e as Error).message}`);
          }
        }
        c.close();
      };
      const running = [client(0), client(1)];
      await waitFor(
        'a renewal of istio-ca seen by clients',
        async () => (seen.size >= 2 || failures.length > 0 ? true : undefined),
        90_000,
      );
      stopping = true;
      await Promise.all(running);
      assert.deepEqual(failures, [], `${failures.length} of ${requests} requests failed`);
      assert.ok(seen.size >= 2, `${seen.size} issuing CAs seen`);
      for (const [ca, chain] of seen) {
        const vv = opensslChain(tmp.path, pcaRoot, ca, chain[0]);
        assert.equal(vv.code, 0, vv.stderr + vv.stdout);
        assert.equal(chain[chain.length - 1], pcaRoot, 'the last cert_chain entry is the PCA root');
      }
      const cas = [...seen.keys()].map((p) => new X509Certificate(p));
      const last = cas[cas.length - 1];
      assert.notEqual(last.serialNumber, firstCa.serialNumber);
      assert.ok(!last.publicKey.equals(firstCa.publicKey), 'the renewed istio-ca has a new key (rotationPolicy Always)');
      assert.equal(last.subject, 'O=cert-manager\nCN=istio-ca');

      // The agent's certificate from the first istio-ca still renews over mTLS, from the current one.
      const mtls = IstioCaClient.tls(grpcAddr, pcaRoot, {
        serverName: SERVER_NAME,
        certChainPem: agentChain,
        keyPem: readFileSync(join(out, 'key.pem'), 'utf8'),
      });
      try {
        const r = await mtls.createCertificate({ csr: workloadCsr(ID('workshop', 'frontend-sa')).csr });
        assert.notEqual(new X509Certificate(r.certChain[1]).serialNumber, firstCa.serialNumber);
      } finally {
        mtls.close();
      }

      const cert = parseYaml(ok(await meshca(['get', 'certificate', 'istio-ca', '-n', 'istio-system', '-o', 'yaml']), 'get').stdout) as {
        status: { revision: number };
      };
      assert.ok(cert.status.revision >= 2, `revision ${cert.status.revision}: serve's controllers renewed istio-ca`);
      assert.equal(serve.child.exitCode, null, 'serve never restarted');
      assert.match(serve.stderr(), /"object":"Certificate istio-system\/istio-ca","action":"renewed"/, 'renewed by serve itself');
      assert.match(serve.stderr(), /"msg":"signing with the issuer secret"/);
      await serve.stop();
    });
  }
});

describe('issuer secret refusals: not ready with the reason, until the Secret is fixed', () => {
  const dir = join(tmp.path, 'refusals');
  let serve: Child;
  let http: string;
  let grpcAddr: string;
  const files = join(tmp.path, 'openssl');

  function apply(name: string, data: { crt: string; key: string; ca: string }) {
    const yaml = secretManifest(
      [
        { name: 'tls.crt', data: readFileSync(data.crt) },
        { name: 'tls.key', data: readFileSync(data.key) },
        { name: 'ca.crt', data: readFileSync(data.ca) },
      ],
      { name: 'istio-ca', namespace: 'istio-system', type: 'kubernetes.io/tls' },
    );
    const f = join(tmp.path, `${name}.yaml`);
    writeFileSync(f, yaml);
    return runMeshca(['apply', '-f', f, '--dir', dir]);
  }

  async function reasonMatching(re: RegExp): Promise<Ready> {
    return waitFor(`/readyz reason ${re.source}`, async () => {
      const r = await readyz(http);
      return r.status === 503 && re.test(r.body.reason ?? '') ? r.body : undefined;
    });
  }

  before(() => mkdirSync(files, { recursive: true }));

  it('refuses combinations that make no sense with a config error', async () => {
    const r = await runMeshca([
      'serve',
      '--dir',
      dir,
      '--issuer-secret',
      'istio-system/istio-ca',
      '--upstream',
      'awspca',
      '--awspca-arn',
      'arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555',
    ]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /issuerSecret.*upstream awspca would be a second one/);
  });

  it('a key that does not match, then a certificate that is no CA, then a good Secret', async () => {
    const root = opensslRoot(files, { subj: '/O=Amazon/CN=PCA root' });
    const ca = opensslIntermediate(files, root, { subj: '/O=cert-manager/CN=istio-ca', pathlen: 0 });
    const otherKey = join(files, 'other-key.pem');
    opensslGenKey('ec:P-256', otherKey);
    ok(await apply('mismatch', { crt: ca.cert, key: otherKey, ca: root.cert }), 'apply mismatched secret');

    serve = spawnMeshca([
      'serve',
      '--dir',
      dir,
      '--issuer-secret',
      'istio-system/istio-ca',
      '--plaintext',
      '--grpc-addr',
      '127.0.0.1:0',
      '--http-addr',
      '127.0.0.1:0',
    ]);
    children.push(serve);
    const listening = await serve.ready;
    grpcAddr = listening.grpc as string;
    http = listening.http as string;
    const r = await readyz(http);
    assert.equal(r.status, 503);
    assert.match(
      r.body.reason ?? '',
      /^secret istio-system\/istio-ca cannot sign workload certificates: tls\.key does not match the public key of tls\.crt "istio-ca"$/,
    );
    const token = (await runMeshca(['token', '--dir', dir, '-n', 'workshop', '-s', 'frontend-sa'])).stdout.trim();
    const c = new IstioCaClient(grpcAddr, grpc.credentials.createInsecure());
    try {
      await assert.rejects(
        c.createCertificate({ csr: workloadCsr(ID('workshop', 'frontend-sa')).csr }, { token }),
        (e: grpc.ServiceError) => {
          assert.equal(e.code, grpc.status.UNAVAILABLE);
          assert.match(
            e.details,
            /the CA cannot sign: secret istio-system\/istio-ca cannot sign workload certificates: tls\.key does not match/,
          );
          return true;
        },
      );

      // A leaf where the CA should be.
      const leafKey = join(files, 'leaf-key.pem');
      opensslGenKey('ec:P-256', leafKey);
      const leafCsr = join(files, 'leaf.csr');
      openssl(['req', '-new', '-key', leafKey, '-subj', '/CN=not-a-ca', '-out', leafCsr]);
      const leafCrt = join(files, 'leaf-cert.pem');
      const x = openssl(['x509', '-req', '-in', leafCsr, '-CA', root.cert, '-CAkey', root.key, '-days', '1', '-out', leafCrt]);
      assert.equal(x.code, 0, x.stderr);
      ok(await apply('not-a-ca', { crt: leafCrt, key: leafKey, ca: root.cert }), 'apply leaf secret');
      await reasonMatching(/tls\.crt "not-a-ca" is not a CA \(basicConstraints CA:TRUE missing\)/);

      // Fixed: ready without a restart, and workloads chain to the Secret's CA.
      ok(await apply('good', { crt: ca.cert, key: ca.key, ca: root.cert }), 'apply good secret');
      await waitFor('ready', async () => ((await readyz(http)).status === 200 ? true : undefined));
      const got = await c.createCertificate({ csr: workloadCsr(ID('workshop', 'frontend-sa')).csr }, { token });
      const v = opensslChain(tmp.path, readFileSync(root.cert, 'utf8'), readFileSync(ca.cert, 'utf8'), got.certChain[0]);
      assert.equal(v.code, 0, v.stderr + v.stdout);
    } finally {
      c.close();
    }
    assert.equal(serve.child.exitCode, null);
  });
});
