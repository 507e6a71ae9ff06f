import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CaState } from '../../src/ca/state.js';
import { startPcaApi } from '../../src/server/pca/index.js';
import { K8sDouble } from '../k8s-double/index.js';
import { MESHCA_BIN, REPO_ROOT, ok, runMeshca } from '../helpers/run.js';
import { awsEnv } from './pca-helpers.js';
import { startPostgres } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { spawnServe } from './serve/helpers.js';

// Gloo's defaults: an RSA-4096 generated root and RSA-4096 intermediates.
const POLICY = `apiVersion: admin.gloo.solo.io/v2
kind: RootTrustPolicy
metadata: {name: root-trust-policy, namespace: gloo-mesh}
spec:
  config:
    mgmtServerCa:
      generated: {}
`;

/** The start line and the end line (with a duration) of one reported step, in that order. */
function assertStep(stderr: string, what: string): void {
  const quoted = what.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const start = new RegExp(`^meshca: ${quoted} \\.\\.\\.$`, 'm').exec(stderr);
  const end = new RegExp(`^meshca: ${quoted}: done in \\d+\\.\\d s$`, 'm').exec(stderr);
  assert.ok(start && end && start.index < end.index, `"${what}" is reported before and after:\n${stderr}`);
}

/** The same two lines as records of a JSON log: "WHAT ..." then "WHAT: done" with seconds; plain lines are skipped. */
function assertLoggedStep(stderr: string, what: string): void {
  const records = stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg: string; seconds?: number });
  const start = records.findIndex((r) => r.msg === `${what} ...`);
  const end = records.findIndex((r) => r.msg === `${what}: done` && typeof r.seconds === 'number');
  assert.ok(start >= 0 && end > start, `${what}:\n${stderr}`);
}

describe('slow steps say what they wait for on stderr', () => {
  const tmp = tempDir('meshca-progress-');
  after(() => tmp.cleanup());

  it('apply of a RootTrustPolicy reports its RSA-4096 root and intermediate; stdout is unchanged', async () => {
    const dir = join(tmp.path, 'rtp');
    writeFileSync(join(tmp.path, 'rtp.yaml'), POLICY);
    ok(await runMeshca(['cluster', 'add', 'east', '--no-reconcile', '--dir', dir]), 'cluster add');
    const r = ok(await runMeshca(['apply', '-f', join(tmp.path, 'rtp.yaml'), '--dir', dir], { timeoutMs: 120_000 }), 'apply');
    assert.equal(r.stdout, 'roottrustpolicy.admin.gloo.solo.io/root-trust-policy created\n');
    assertStep(r.stderr, 'generating RSA-4096 key for the root');
    assertStep(r.stderr, 'generating RSA-4096 key for the intermediate of cluster "east"');
    const ca = new X509Certificate(readFileSync(join(dir, 'clusters', 'east', 'cacerts', 'ca-cert.pem')));
    assert.equal(ca.publicKey.asymmetricKeyDetails?.modulusLength, 4096, 'the reported key is the one issued');
    // A cluster added later gets its intermediate from the reconcile that follows, reported the same way.
    const west = ok(await runMeshca(['cluster', 'add', 'west', '--dir', dir], { timeoutMs: 120_000 }), 'cluster add west');
    assertStep(west.stderr, 'generating RSA-4096 key for the intermediate of cluster "west"');
  });

  it('init and intermediate report RSA-3072/4096 keys; fast EC and RSA-2048 keys print nothing extra', async () => {
    const slow = join(tmp.path, 'slow');
    const init = ok(await runMeshca(['init', '--key-algorithm', 'rsa-4096', '--dir', slow], { timeoutMs: 120_000 }), 'init');
    assert.match(init.stdout, /^created root "O = cluster.local"/);
    assert.doesNotMatch(init.stdout, /generating/);
    assertStep(init.stderr, 'generating RSA-4096 key for the root');
    const inter = ok(
      await runMeshca(['intermediate', '--cluster', 'west', '--key-algorithm', 'rsa-3072', '--out', join(tmp.path, 'west'), '--dir', slow]),
      'intermediate',
    );
    assertStep(inter.stderr, 'generating RSA-3072 key for the intermediate of cluster "west"');

    const fast = join(tmp.path, 'fast');
    const ec = ok(await runMeshca(['init', '--key-algorithm', 'ec-p256', '--dir', fast]), 'init ec');
    assert.equal(ec.stderr, `meshca: created state directory ${fast} (from --dir)\n`);
    for (const key of ['ec-p256', 'rsa-2048']) {
      const args = ['intermediate', '--cluster', `c-${key}`, '--key-algorithm', key, '--out', join(tmp.path, key), '--dir', fast];
      assert.equal(ok(await runMeshca(args), `intermediate ${key}`).stderr, '');
    }
  });

  it('serve logs the RSA-4096 root and intermediate of its first start through its logger', async () => {
    const dir = join(tmp.path, 'serve');
    const args = ['--dir', dir, '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--plaintext', '--log-format', 'json'];
    const s = spawnServe([...args, '--cluster', 'east', '--key-algorithm', 'rsa-4096']);
    try {
      await s.ready;
    } finally {
      assert.equal(await s.stop(), 0, s.stderr());
    }
    for (const what of ['generating RSA-4096 key for the root', 'generating RSA-4096 key for the intermediate of cluster "east"']) {
      assertLoggedStep(s.stderr(), what);
    }
  });

  it('serve logs slow keys whatever makes them: PostgreSQL replicas and an upstream CA', async () => {
    const pg = await startPostgres();
    const state = new CaState(join(tmp.path, 'pca-upstream'));
    state.initRoot({ alg: 'ec-p256', subject: { organization: ['corp'] }, days: 3650, now: new Date() });
    const key = { id: 'AKIDPROGRESSTEST02', secret: 'progress-test-secret-9876543210' };
    const api = await startPcaApi({ state, addr: '127.0.0.1:0', region: 'us-east-1', account: '123456789012', accessKeys: [key] });
    const common = ['--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--plaintext', '--log-format', 'json'];
    const runs: { name: string; args: string[]; env: Record<string, string>; steps: string[] }[] = [
      {
        name: 'postgres',
        args: ['--dir', join(tmp.path, 'pg-replica'), '--cluster', 'east', '--key-algorithm', 'rsa-3072'],
        env: { MESHCA_STORE_URL: await pg.createDatabase('progress') },
        steps: ['generating RSA-3072 key for the root', 'generating RSA-3072 key for the intermediate of cluster "east"'],
      },
      {
        name: 'awspca',
        args: ['--dir', join(tmp.path, 'upstream'), '--key-algorithm', 'rsa-3072', '--upstream', 'awspca'],
        env: { ...awsEnv(tmp.path, key.id, key.secret), MESHCA_AWSPCA_ARN: api.cas()[0].arn, MESHCA_AWSPCA_ENDPOINT_URL: api.url },
        steps: ['generating RSA-3072 key for the upstream intermediate'],
      },
    ];
    try {
      for (const run of runs) {
        const s = spawnServe([...common, ...run.args], run.env);
        try {
          await s.ready;
        } finally {
          assert.equal(await s.stop(), 0, `${run.name}: ${s.stderr()}`);
        }
        for (const what of run.steps) assertLoggedStep(s.stderr(), what);
      }
    } finally {
      await api.close();
      await pg.stop();
    }
  });

  it('gen-ca reports its RSA-4096 key and a wait on AWS Private CA that outlasts a second', async () => {
    const fixtures = fileURLToPath(new URL('../../../test/fixtures/getistio/', import.meta.url));
    const state = new CaState(join(tmp.path, 'pca-state'));
    state.importRoot(readFileSync(join(fixtures, 'pca-root-cert.pem'), 'utf8'), readFileSync(join(fixtures, 'pca-root-key.pem'), 'utf8'));
    const key = { id: 'AKIDPROGRESSTEST01', secret: 'progress-test-secret-0123456789' };
    // GetCertificate answers "in progress" for two seconds, as PCA does while it issues.
    const api = await startPcaApi({
      state,
      addr: '127.0.0.1:0',
      region: 'us-east-2',
      account: '859085711342',
      accessKeys: [key],
      issueDelayMs: 2000,
    });
    try {
      const config = join(tmp.path, 'gen-ca.yaml');
      writeFileSync(config, readFileSync(join(fixtures, 'aws-acm-config.yaml'), 'utf8').replace('keyLength: 2048', 'keyLength: 4096'));
      const out = join(tmp.path, 'gen-ca-out');
      // The ARN's own region (us-east-2), as the tutorial runs it.
      const env = { ...awsEnv(tmp.path, key.id, key.secret), AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined };
      const r = ok(
        await runMeshca(['gen-ca', '--awspca-endpoint-url', api.url, '--config-file', config, '--out', out], {
          env,
          cwd: tmp.path,
          timeoutMs: 120_000,
        }),
        'gen-ca',
      );
      assertStep(r.stderr, 'generating RSA-4096 key for the intermediate');
      assertStep(r.stderr, `waiting for ${api.cas()[0].arn} to issue the intermediate`);
      assert.match(r.stdout, /^wrote .*ca-cert\.pem$/m);
      assert.doesNotMatch(r.stdout, /generating|waiting/);
    } finally {
      await api.close();
    }
  });

  it('k8s-signer logs the RSA-4096 root and intermediate of its first start', async () => {
    const double = await K8sDouble.start();
    try {
      const kubeconfig = double.writeKubeconfig(join(tmp.path, 'kubeconfig.yaml'));
      const args = ['k8s-signer', '--dir', join(tmp.path, 'signer'), '--signer-names', 'example.com/foo', '--kubeconfig', kubeconfig];
      const child = spawn(
        process.execPath,
        [MESHCA_BIN, ...args, '--cluster', 'east', '--key-algorithm', 'rsa-4096', '--log-format', 'json'],
        {
          cwd: REPO_ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      // Its first stdout line says it is signing: the first start is over.
      const first = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
        });
        void closed.then(() => reject(new Error(`k8s-signer exited: ${err}`)));
      });
      child.kill('SIGTERM');
      await closed;
      clearTimeout(timer);
      assert.equal((JSON.parse(first) as { event: string }).event, 'signing');
      assertLoggedStep(err, 'generating RSA-4096 key for the root');
      assertLoggedStep(err, 'generating RSA-4096 key for the intermediate of cluster "east"');
    } finally {
      await double.close();
    }
  });
});
