import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { CaState, signerFromBundle } from '../../src/ca/state.js';
import { parseCertificate, parseCertificates } from '../../src/pki/certificate.js';
import { createCsr } from '../../src/pki/csr.js';
import { issueWorkloadCertificate } from '../../src/pki/issue.js';
import { generateKeyPair, keyMatches, parsePrivateKeyPem } from '../../src/pki/keys.js';
import { startPcaApi, type PcaApiHandle } from '../../src/server/pca/index.js';
import { opensslOk, opensslVerify } from '../helpers/openssl.js';
import { runMeshca, type RunResult } from '../helpers/run.js';
import { fileMode, tempDir } from '../helpers/tmp.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/getistio/', import.meta.url));
const CONFIG = join(FIXTURES, 'aws-acm-config.yaml');
/** The tutorial's ARN with the id of the fixture root (region and account kept). */
const FIXTURE_ARN = 'arn:aws:acm-pca:us-east-2:859085711342:certificate-authority/570689c0-d28d-8037-ba4b-24c652916e1b';
const KEY = { id: 'AKIDGENCATEST001', secret: 'gen-ca-test-secret-0123456789' };
const SPIFFE = 'spiffe://cluster.local/ns/default/sa/productpage';

describe('meshca gen-ca with the getistio tutorial config', () => {
  const tmp = tempDir('meshca-gen-ca-');
  let api: PcaApiHandle;
  const env = {
    AWS_ACCESS_KEY_ID: KEY.id,
    AWS_SECRET_ACCESS_KEY: KEY.secret,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: join(tmp.path, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(tmp.path, 'aws-credentials'),
    AWS_REGION: undefined,
    AWS_DEFAULT_REGION: undefined,
    AWS_PROFILE: undefined,
    AWS_SESSION_TOKEN: undefined,
    AWS_ENDPOINT_URL: undefined,
  };
  const genCa = (args: string[]): Promise<RunResult> =>
    runMeshca(['gen-ca', '--awspca-endpoint-url', api.url, ...args], { env, cwd: tmp.path });

  before(async () => {
    const state = new CaState(join(tmp.path, 'state'));
    state.importRoot(readFileSync(join(FIXTURES, 'pca-root-cert.pem'), 'utf8'), readFileSync(join(FIXTURES, 'pca-root-key.pem'), 'utf8'));
    // The tutorial's region and account, so that only the CA id in its ARN had to change.
    api = await startPcaApi({ state, addr: '127.0.0.1:0', region: 'us-east-2', account: '859085711342', accessKeys: [KEY] });
    assert.equal(api.cas()[0].arn, FIXTURE_ARN, 'the fixture YAML names the fixture root');
  });
  after(async () => {
    await api.close();
    tmp.cleanup();
  });

  it('writes a cacerts bundle that openssl accepts and a Secret YAML of the right shape', async () => {
    const out = join(tmp.path, 'out');
    const r = await genCa(['--config-file', CONFIG, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`Kubernetes Secret YAML created successfully in ${join(out, 'cacerts.yaml').replace(/[/.]/g, '\\$&')}`),
    );
    assert.deepEqual(readdirSync(out).sort(), ['ca-cert.pem', 'ca-key.pem', 'cacerts.yaml', 'cert-chain.pem', 'root-cert.pem']);
    assert.equal(fileMode(join(out, 'ca-key.pem')), 0o600);

    const v = opensslVerify(join(out, 'root-cert.pem'), join(out, 'ca-cert.pem'));
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const ca = parseCertificate(readFileSync(join(out, 'ca-cert.pem'), 'utf8'));
    assert.equal(ca.subject, 'C = US, L = Sunnyvale, O = Istio, OU = engineering, CN = getistio.example.io');
    assert.deepEqual(ca.ext.san?.emailAddresses, ['youremail@example.io']);
    assert.equal(ca.ext.basicConstraints?.pathLen, 0);
    assert.equal(ca.keyInfo.label, 'RSA 2048');
    assert.equal(ca.signatureAlgorithm, 'sha256WithRSAEncryption');
    const days = (ca.notAfter.getTime() - Date.now()) / 86_400_000;
    assert.ok(days > 364.9 && days <= 365, `valid for ${days} days`);
    assert.ok(keyMatches(parsePrivateKeyPem(readFileSync(join(out, 'ca-key.pem'))), ca.publicKey));
    const chain = parseCertificates(readFileSync(join(out, 'cert-chain.pem'), 'utf8'));
    assert.deepEqual(
      chain.map((c) => c.fingerprint256),
      [ca.fingerprint256, parseCertificate(readFileSync(join(FIXTURES, 'pca-root-cert.pem'), 'utf8')).fingerprint256],
    );
    assert.equal(readFileSync(join(out, 'root-cert.pem'), 'utf8').trim(), readFileSync(join(FIXTURES, 'pca-root-cert.pem'), 'utf8').trim());

    // The bundle works as Istio's plugin CA: a workload certificate from it verifies up to the PCA root.
    const state = new CaState(join(tmp.path, 'verify-state'));
    const bundle = { caCert: ca, caKey: parsePrivateKeyPem(readFileSync(join(out, 'ca-key.pem'))), chain, roots: [chain[1]] };
    state.adoptCluster('east', bundle);
    const leaf = issueWorkloadCertificate(signerFromBundle(bundle), {
      csr: createCsr({ key: generateKeyPair('ec-p256').privateKey, sans: { uris: [SPIFFE] } }).pem,
      identities: [SPIFFE],
      ttlSeconds: 3600,
      now: new Date(),
    });
    writeFileSync(join(tmp.path, 'workload.pem'), leaf.certPem);
    const wv = opensslVerify(join(out, 'root-cert.pem'), join(tmp.path, 'workload.pem'), join(out, 'cert-chain.pem'), [
      '-purpose',
      'sslclient',
    ]);
    assert.equal(wv.code, 0, wv.stdout + wv.stderr);

    const secret = parseYaml(readFileSync(join(out, 'cacerts.yaml'), 'utf8')) as {
      apiVersion: string;
      kind: string;
      type: string;
      metadata: { name: string; namespace: string };
      data: Record<string, string>;
    };
    assert.equal(secret.apiVersion, 'v1');
    assert.equal(secret.kind, 'Secret');
    assert.equal(secret.type, 'Opaque');
    assert.deepEqual([secret.metadata.name, secret.metadata.namespace], ['cacerts', 'istio-system']);
    assert.deepEqual(Object.keys(secret.data).sort(), ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem']);
    for (const [name, b64] of Object.entries(secret.data)) {
      assert.equal(Buffer.from(b64, 'base64').toString('utf8'), readFileSync(join(out, name), 'utf8'), name);
    }
    // kubectl would accept it as is.
    opensslOk(['x509', '-noout', '-in', join(out, 'ca-cert.pem')]);

    const again = await genCa(['--config-file', CONFIG, '--out', out]);
    assert.equal(again.code, 4, 'an existing bundle (with its key) is not overwritten');
    assert.match(again.stderr, /already holds ca-cert\.pem, ca-key\.pem/);
  });

  it('rejects bad configs with the field path, before contacting PCA', async () => {
    const seed = readFileSync(CONFIG, 'utf8');
    const cases: [string, string, RegExp][] = [
      [
        'unknown',
        seed.replace('    keyLength: 2048', '    keyLength: 2048\n    keyType: rsa'),
        /certificateParameters\.caOptions\.keyType: unknown field/,
      ],
      [
        'type',
        seed.replace('validityDays: 365', 'validityDays: [365]'),
        /certificateParameters\.caOptions\.validityDays: must be a whole number of days/,
      ],
      ['provider', seed.replace('providerName: "aws"', 'providerName: "gcp"'), /providerName: must be "aws"/],
      [
        'weak',
        seed.replace('keyLength: 2048', 'keyLength: 1024'),
        /certificateParameters\.caOptions\.keyLength: RSA key length 1024 is not accepted/,
      ],
    ];
    const before = api.service.stats.issued;
    const results = await Promise.all(
      cases.map(([name, text]) => {
        const file = join(tmp.path, `bad-${name}.yaml`);
        writeFileSync(file, text);
        return genCa(['--config-file', file, '--out', join(tmp.path, `bad-${name}`)]);
      }),
    );
    results.forEach((r, i) => {
      assert.equal(r.code, 2, `${cases[i][0]}: ${r.stderr}`);
      assert.match(r.stderr, cases[i][2]);
      assert.ok(!existsSync(join(tmp.path, `bad-${cases[i][0]}`)), 'nothing written');
    });
    assert.equal(api.service.stats.issued, before);
  });

  /** A kubeconfig with two contexts on one API server. */
  function kubeconfig(file: string, server: string): string {
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{name: c, cluster: {server: "${server}"}}]`,
        'users: [{name: u, user: {token: test-token}}]',
        'contexts: [{name: main, context: {cluster: c, user: u}}, {name: other, context: {cluster: c, user: u}}]',
        'current-context: main',
      ].join('\n'),
    );
    return file;
  }

  it('creates the cacerts Secret through the Kubernetes API, refuses to replace it unless overrideExistingCACertsSecret, then replaces it', async () => {
    // A stand-in for the API server: just the Secret endpoints gen-ca uses.
    const seen: string[] = [];
    let stored: { metadata: { resourceVersion: string }; data: Record<string, string> } | undefined;
    const kube = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
        const reply = (status: number, body: unknown): void =>
          void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        const body = chunks.length
          ? (JSON.parse(Buffer.concat(chunks).toString()) as typeof stored & { metadata: { resourceVersion?: string } })
          : undefined;
        if (req.method === 'GET')
          return stored ? reply(200, stored) : reply(404, { kind: 'Status', message: 'secrets "cacerts" not found' });
        if (req.method === 'POST' || req.method === 'PUT') {
          if (req.method === 'PUT' && body!.metadata.resourceVersion !== stored?.metadata.resourceVersion)
            return reply(409, { message: 'conflict' });
          stored = { ...body!, metadata: { ...body!.metadata, resourceVersion: String(seen.length) } };
          return reply(req.method === 'POST' ? 201 : 200, stored);
        }
        reply(405, {});
      });
    });
    await new Promise<void>((r) => kube.listen(0, '127.0.0.1', () => r()));
    const kc = kubeconfig(join(tmp.path, 'kubeconfig'), `http://127.0.0.1:${(kube.address() as AddressInfo).port}`);
    const noOverride = join(tmp.path, 'no-override.yaml');
    writeFileSync(
      noOverride,
      readFileSync(CONFIG, 'utf8').replace('overrideExistingCACertsSecret: true', 'overrideExistingCACertsSecret: false'),
    );
    try {
      const created = await genCa(['--config-file', CONFIG, '--out', join(tmp.path, 'k1'), '--kubeconfig', kc]);
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stdout, /Kubernetes Secret created successfully with name: cacerts, in namespace: istio-system/);
      assert.equal(
        Buffer.from(stored!.data['ca-cert.pem'], 'base64').toString(),
        readFileSync(join(tmp.path, 'k1', 'ca-cert.pem'), 'utf8'),
      );

      const issued = api.service.stats.issued;
      const refused = await genCa(['--config-file', noOverride, '--out', join(tmp.path, 'k2'), '--kubeconfig', kc, '--context', 'other']);
      assert.equal(refused.code, 4, refused.stderr);
      assert.match(
        refused.stderr,
        /secret istio-system\/cacerts already exists; set certificateParameters\.secretOptions\.overrideExistingCACertsSecret: true.*; nothing was requested from AWS Private CA/,
      );
      assert.equal(api.service.stats.issued, issued, 'refused before PCA issued a certificate');
      assert.ok(!existsSync(join(tmp.path, 'k2')), 'and before any file was written');

      const replaced = await genCa(['--config-file', CONFIG, '--out', join(tmp.path, 'k3'), '--kubeconfig', kc]);
      assert.equal(replaced.code, 0, replaced.stderr);
      assert.match(replaced.stdout, /Kubernetes Secret replaced successfully with name: cacerts/);
      assert.equal(Buffer.from(stored!.data['ca-key.pem'], 'base64').toString(), readFileSync(join(tmp.path, 'k3', 'ca-key.pem'), 'utf8'));
      assert.deepEqual(
        seen.map((l) => l.replace(/\s+/g, ' ')),
        [
          'GET /api/v1/namespaces/istio-system/secrets/cacerts Bearer test-token',
          'POST /api/v1/namespaces/istio-system/secrets Bearer test-token',
          'GET /api/v1/namespaces/istio-system/secrets/cacerts Bearer test-token',
          'GET /api/v1/namespaces/istio-system/secrets/cacerts Bearer test-token',
          'PUT /api/v1/namespaces/istio-system/secrets/cacerts Bearer test-token',
        ],
      );
    } finally {
      kube.close();
    }
  });

  it('writes the Secret YAML to secretFilePath', async () => {
    const secretDir = join(tmp.path, 'secrets/');
    const cfg = join(tmp.path, 'with-path.yaml');
    writeFileSync(
      cfg,
      readFileSync(CONFIG, 'utf8').replace('  secretOptions:\n', `  secretOptions:\n    secretFilePath: "${secretDir}"\n`),
    );
    const out = join(tmp.path, 'out-path');
    const r = await genCa(['--config-file', cfg, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`Kubernetes Secret YAML created successfully in ${secretDir.replace(/[/.]/g, '\\$&')}cacerts-\\d{8}T\\d{6}Z\\.yaml`),
    );
    assert.equal(readdirSync(secretDir).length, 1);
    assert.ok(existsSync(join(out, 'ca-key.pem')));
  });

  it('checks the kubeconfig and reaches its API server before PCA issues anything', async () => {
    const before = api.service.stats.issued;
    const dead = kubeconfig(join(tmp.path, 'kubeconfig-dead'), 'https://127.0.0.1:1');
    const cases: [string, string[], number, RegExp][] = [
      [
        'out-dead',
        ['--kubeconfig', dead],
        7,
        /cannot read secret istio-system\/cacerts at https:\/\/127\.0\.0\.1:1 \(kubeconfig .*kubeconfig-dead\): .*; nothing was requested from AWS Private CA and no file was written/,
      ],
      ['out-missing', ['--kubeconfig', join(tmp.path, 'absent')], 2, /kubeconfig .*absent cannot be used: ENOENT.*; nothing was requested/],
      ['out-context', ['--kubeconfig', dead, '--context', 'prod'], 2, /has no context "prod"; nothing was requested/],
    ];
    for (const [out, args, code, message] of cases) {
      const r = await genCa(['--config-file', CONFIG, '--out', join(tmp.path, out), ...args]);
      assert.equal(r.code, code, `${out}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.ok(!existsSync(join(tmp.path, out)), `${out} not written`);
    }
    assert.equal(api.service.stats.issued, before, 'PCA issued no certificate');
  });
});
