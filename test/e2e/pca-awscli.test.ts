import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CaState } from '../../src/ca/state.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { opensslOk, opensslVerify } from '../helpers/openssl.js';
import { ok, runMeshca } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { awsCliPath, awsEnv, runAws, startPcaApiProcess, type PcaApiProcess } from './pca-helpers.js';

const KEY_ID = 'AKIDAWSCLITEST01';
const SECRET = 'aws-cli-test-secret-0123456789abcdef';
const CLI = awsCliPath();

describe('the real AWS CLI against `meshca pca-api`', { skip: CLI ? false : 'no aws CLI installed (apt-get install -y awscli)' }, () => {
  const tmp = tempDir('meshca-pca-cli-');
  const stateDir = join(tmp.path, 'state');
  const env = awsEnv(tmp.path, KEY_ID, SECRET);
  let api: PcaApiProcess;
  let arn: string;
  let rootFile: string;
  const aws = (args: string[], extraEnv: Record<string, string | undefined> = {}) =>
    runAws(
      CLI!,
      ['acm-pca', ...args, '--endpoint-url', api.url, '--region', 'us-east-1', '--output', 'json'],
      { ...env, ...extraEnv },
      tmp.path,
    );

  before(async () => {
    const state = new CaState(stateDir);
    state.initRoot({ alg: 'rsa-2048', subject: { organization: ['Istio'], commonName: 'CLI root' }, now: new Date() });
    rootFile = state.rootCertPath;
    api = await startPcaApiProcess(['--dir', stateDir, '--pca-access-key', `${KEY_ID}:${SECRET}`, '--pca-inject-throttle', '1']);
    assert.equal(api.arns.length, 1, api.output());
    arn = api.arns[0];
    opensslOk([
      'req',
      '-new',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      join(tmp.path, 'leaf.key'),
      '-subj',
      '/CN=web.example',
      '-addext',
      'subjectAltName=DNS:web.example',
      '-out',
      join(tmp.path, 'leaf.csr'),
    ]);
    opensslOk([
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(tmp.path, 'sub.key'),
      '-subj',
      '/O=Istio/CN=Subordinate',
      '-out',
      join(tmp.path, 'sub.csr'),
    ]);
  });
  after(async () => {
    await api?.stop();
    tmp.cleanup();
  });

  /** issue-certificate then get-certificate, the way an operator does it by hand. */
  async function issueAndGet(csr: string, token: string, extra: string[]): Promise<{ Certificate: string; CertificateChain: string }> {
    const issued = await aws(
      ['issue-certificate', '--certificate-authority-arn', arn, '--csr', `fileb://${csr}`, '--idempotency-token', token, ...extra],
      { AWS_RETRY_MODE: 'standard', AWS_MAX_ATTEMPTS: '5' },
    );
    assert.equal(issued.code, 0, issued.stderr);
    const certArn = JSON.parse(issued.stdout).CertificateArn as string;
    assert.ok(certArn.startsWith(`${arn}/certificate/`));
    const got = await aws(['get-certificate', '--certificate-authority-arn', arn, '--certificate-arn', certArn]);
    assert.equal(got.code, 0, got.stderr);
    return JSON.parse(got.stdout) as { Certificate: string; CertificateChain: string };
  }

  // The AWS CLI takes about two seconds to start, so independent calls run side by side.
  it('issues and gets an end-entity and a PathLen0 subordinate (openssl verifies both), describes the CA, refuses a wrong secret', async () => {
    const endYear = new Date().getUTCFullYear() + 2;
    const [leaf, sub, described, wrong] = await Promise.all([
      issueAndGet('leaf.csr', 'cli-token-leaf', ['--signing-algorithm', 'SHA256WITHRSA', '--validity', 'Value=30,Type=DAYS']),
      issueAndGet('sub.csr', 'cli-token-sub', [
        '--signing-algorithm',
        'SHA384WITHRSA',
        '--template-arn',
        'arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1',
        '--validity',
        `Value=${endYear}0101000000,Type=END_DATE`,
      ]),
      aws(['describe-certificate-authority', '--certificate-authority-arn', arn]),
      aws(['describe-certificate-authority', '--certificate-authority-arn', arn], { AWS_SECRET_ACCESS_KEY: 'not-the-right-secret-at-all' }),
    ]);

    writeFileSync(join(tmp.path, 'leaf.pem'), leaf.Certificate);
    const v = opensslVerify(rootFile, join(tmp.path, 'leaf.pem'), undefined, ['-purpose', 'sslserver']);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    assert.ok(parseCertificate(leaf.CertificateChain).der.equals(parseCertificate(readFileSync(rootFile, 'utf8')).der));

    const subCert = parseCertificate(sub.Certificate);
    assert.equal(subCert.ext.basicConstraints?.pathLen, 0);
    assert.equal(subCert.signatureAlgorithm, 'sha384WithRSAEncryption');
    assert.equal(subCert.notAfter.toISOString(), `${endYear}-01-01T00:00:00.000Z`);
    writeFileSync(join(tmp.path, 'sub.pem'), sub.Certificate);
    const vs = opensslVerify(rootFile, join(tmp.path, 'sub.pem'));
    assert.equal(vs.code, 0, vs.stdout + vs.stderr);

    // The one injected throttle was retried by the CLI with the same idempotency token.
    const issues = api
      .output()
      .split('\n')
      .filter((l) => l.includes(' IssueCertificate '));
    assert.equal(issues.filter((l) => l.includes('ThrottlingException')).length, 1, api.output());
    const throttledToken = /token=(\S+)/.exec(issues.find((l) => l.includes('ThrottlingException'))!)![1];
    assert.equal(issues.filter((l) => l.includes(`token=${throttledToken}`) && l.includes(' 200 ')).length, 1);

    assert.equal(described.code, 0, described.stderr);
    const ca = JSON.parse(described.stdout).CertificateAuthority;
    assert.deepEqual([ca.Arn, ca.Status, ca.Type, ca.UsageMode], [arn, 'ACTIVE', 'ROOT', 'GENERAL_PURPOSE']);
    assert.equal(ca.CertificateAuthorityConfiguration.KeyAlgorithm, 'RSA_2048');
    assert.equal(ca.CertificateAuthorityConfiguration.Subject.CommonName, 'CLI root');

    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /InvalidSignatureException/);
  });

  it('lists bare ARNs that the AWS CLI takes as they are, details with -o', async () => {
    const list = await runMeshca(['pca-api', '--dir', stateDir, '--list-arns', '--pca-region', 'us-east-1']);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout, `${arn}\n`, 'one ARN a line, nothing else');
    // What `ARN=$(meshca pca-api --list-arns | head -1)` captures, straight into the next aws command.
    const first = list.stdout.split('\n')[0];
    const described = await aws(['describe-certificate-authority', '--certificate-authority-arn', first]);
    assert.equal(described.code, 0, described.stderr);
    assert.equal(JSON.parse(described.stdout).CertificateAuthority.Arn, arn);

    const wide = await runMeshca(['pca-api', '--dir', stateDir, '--list-arns', '--pca-region', 'us-east-1', '-o', 'wide']);
    assert.equal(wide.code, 0, wide.stderr);
    assert.match(wide.stdout, /^ARN +TYPE +NAME +SUBJECT\n/);
    assert.match(wide.stdout, new RegExp(`^${arn.replace(/[/.]/g, '\\$&')} +ROOT +root +O = Istio, CN = CLI root$`, 'm'));
    const json = await runMeshca(['pca-api', '--dir', stateDir, '--list-arns', '--pca-region', 'us-east-1', '-o', 'json']);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), [{ arn, type: 'ROOT', name: 'root', subject: 'O = Istio, CN = CLI root' }]);
    const stray = await runMeshca(['pca-api', '--dir', stateDir, '-o', 'json']);
    assert.notEqual(stray.code, 0);
    assert.match(stray.stderr, /-o\/--output applies to --list-arns only/);
  });

  it('--list-arns names the region as serving does: --pca-region, $AWS_REGION, $AWS_DEFAULT_REGION', async () => {
    const id = arn.split('/').pop()!;
    const listed = async (args: string[], env: Record<string, string | undefined>): Promise<string> => {
      const r = await runMeshca(['pca-api', '--dir', stateDir, '--list-arns', ...args], { env });
      return ok(r, `--list-arns ${args.join(' ')}`).stdout.trim();
    };
    const none = { AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined };
    assert.equal(await listed([], none), `arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/${id}`);
    assert.equal(
      await listed([], { ...none, AWS_DEFAULT_REGION: 'eu-west-1' }),
      `arn:aws:acm-pca:eu-west-1:000000000000:certificate-authority/${id}`,
    );
    assert.equal(
      await listed([], { AWS_REGION: 'ap-south-1', AWS_DEFAULT_REGION: 'eu-west-1' }),
      `arn:aws:acm-pca:ap-south-1:000000000000:certificate-authority/${id}`,
    );
    assert.equal(
      await listed(['--pca-region', 'eu-central-1'], { AWS_REGION: 'ap-south-1' }),
      `arn:aws:acm-pca:eu-central-1:000000000000:certificate-authority/${id}`,
    );
  });

  it('refuses to start unauthenticated unless on loopback with --pca-insecure', async () => {
    const noKeys = await runMeshca(['pca-api', '--dir', stateDir, '--pca-api-addr', '127.0.0.1:0']);
    assert.equal(noKeys.code, 5);
    assert.match(noKeys.stderr, /needs access keys/);
    const exposed = await runMeshca(['pca-api', '--dir', stateDir, '--pca-api-addr', '0.0.0.0:0', '--pca-insecure']);
    assert.equal(exposed.code, 5);
    assert.match(exposed.stderr, /only allowed on a loopback address/);
    const open = await startPcaApiProcess(['--dir', stateDir, '--pca-insecure']);
    try {
      assert.match(open.output(), /UNAUTHENTICATED/);
      const r = await runAws(
        CLI!,
        ['acm-pca', 'list-certificate-authorities', '--no-sign-request', '--endpoint-url', open.url, '--output', 'json'],
        env,
        tmp.path,
      );
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await open.stop();
    }
  });
});
