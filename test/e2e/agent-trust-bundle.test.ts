// One agent command for every mode: `meshca agent --ca-root DIR/trust-bundle.pem` must work whether
// the mesh has a local root, an intermediate from AWS PCA, or no CA key at all (RA mode), and what
// the agent gets must verify, with openssl, against that very file.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { opensslVerify } from '../helpers/openssl.js';
import { runMeshca } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { startPcaApiProcess, type PcaApiProcess } from './pca-helpers.js';
import { getText, spawnServe } from './serve/helpers.js';

const KEY = { id: 'AKIDTRUSTBUNDLE01', secret: 'trust-bundle-secret-0123456789' };
const CREDS = { AWS_ACCESS_KEY_ID: KEY.id, AWS_SECRET_ACCESS_KEY: KEY.secret, AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' };
const ADDRS = ['--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--log-level', 'info', '--log-format', 'json'];

describe('meshca agent --ca-root DIR/trust-bundle.pem, in every mode', () => {
  const tmp = tempDir('meshca-trust-bundle-');
  let pca: PcaApiProcess;
  let pcaRoot: string;

  before(async () => {
    const upDir = join(tmp.path, 'pca');
    const init = await runMeshca(['init', '--dir', upDir, '--key-algorithm', 'ec-p256', '--org', 'corp', '--cn', 'Corp PCA root']);
    assert.equal(init.code, 0, init.stderr);
    pcaRoot = readFileSync(join(upDir, 'root', 'root-cert.pem'), 'utf8');
    pca = await startPcaApiProcess(['--dir', upDir, '--pca-access-key', `${KEY.id}:${KEY.secret}`]);
  });
  after(async () => {
    await pca?.stop();
    tmp.cleanup();
  });

  const modes: { name: string; args: () => string[]; localRoot: boolean }[] = [
    { name: 'local root', args: () => [], localRoot: true },
    {
      name: 'awspca intermediate',
      args: () => ['--upstream', 'awspca', '--awspca-arn', pca.arns[0], '--awspca-endpoint-url', pca.url],
      localRoot: false,
    },
    {
      name: 'awspca ra',
      args: () => ['--upstream', 'awspca', '--upstream-mode', 'ra', '--awspca-arn', pca.arns[0], '--awspca-endpoint-url', pca.url],
      localRoot: false,
    },
  ];
  for (const mode of modes) {
    it(`${mode.name}: serve names the file, writes the roots it publishes, and the agent's certificate verifies against it`, async () => {
      const dir = join(tmp.path, mode.name.replace(/ /g, '-'));
      const s = spawnServe(['--dir', dir, ...ADDRS, ...mode.args()], CREDS);
      try {
        const ready = (await s.ready) as Awaited<typeof s.ready> & { trustBundle?: string };
        const file = join(dir, 'trust-bundle.pem');
        assert.equal(ready.trustBundle, file, 'the listening line names the file');
        assert.ok(s.stderr().includes(`agents trust: ${file}`), s.stderr());
        assert.equal(existsSync(join(dir, 'root', 'root-cert.pem')), mode.localRoot, 'a root/ directory only with a local root');

        const pem = readFileSync(file, 'utf8');
        assert.equal(pem, await getText(ready.http, '/v1/trust-bundle?format=pem'), 'the roots /v1/trust-bundle publishes');
        if (!mode.localRoot) assert.equal(pem, pcaRoot, "PCA's root is the mesh's trust anchor");
        assert.doesNotMatch(pem, /PRIVATE KEY/);
        assert.equal(statSync(file).mode & 0o022, 0, 'nobody else may rewrite what agents trust');

        const tokenFile = join(dir, 'web.token');
        const tok = await runMeshca(['token', '--dir', dir, '-n', 'default', '-s', 'web']);
        assert.equal(tok.code, 0, tok.stderr);
        writeFileSync(tokenFile, tok.stdout);
        const out = join(dir, 'web');
        const agent = await runMeshca([
          'agent',
          '--once',
          '--ca-addr',
          ready.grpc,
          '--ca-root',
          file,
          '--token-file',
          tokenFile,
          '--out',
          out,
        ]);
        assert.equal(agent.code, 0, agent.stderr);

        const chain = readFileSync(join(out, 'cert-chain.pem'), 'utf8').match(
          /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/g,
        )!;
        writeFileSync(join(dir, 'leaf.pem'), chain[0]);
        writeFileSync(join(dir, 'untrusted.pem'), chain.slice(1).join('') || chain[0]);
        const v = opensslVerify(file, join(dir, 'leaf.pem'), join(dir, 'untrusted.pem'), ['-purpose', 'sslclient']);
        assert.equal(v.code, 0, v.stderr + v.stdout);
        assert.equal(new X509Certificate(chain[0]).subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/web');
      } finally {
        assert.equal(await s.stop(), 0, s.stderr());
      }
    });
  }
});
