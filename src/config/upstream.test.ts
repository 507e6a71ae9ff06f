import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig, resolveConfig } from './index.js';
import { awsPcaUpstreamSchema } from '../upstream/awspca/config.js';
import { k8sCsrUpstreamSchema } from '../upstream/k8s-csr/config.js';
import { intermediateTtlOf, upstreamBlock } from './upstream.js';

const ARN = 'arn:aws:acm-pca:eu-west-1:123456789012:certificate-authority/0a1b2c3d-0000-1111-2222-333344445555';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'meshca-config-upstream-'));
}

test('upstream defaults to local; the PCA API settings default like `meshca pca-api`', () => {
  const c = resolveConfig({ dir: tmp() });
  assert.equal(c.upstream, 'local');
  assert.equal(c.upstreamMode, 'intermediate');
  assert.equal(c.pcaApiAddr, undefined);
  assert.deepEqual(c.pcaAccessKey, []);
  assert.equal(c.pcaAccount, '000000000000');
  assert.equal(c.pcaUsageMode, 'general-purpose');
  assert.equal(intermediateTtlOf(c), 365 * 86_400, 'intermediateDays when no intermediateTtl');
});

test('flat keys from env and flags, durations parsed', () => {
  const c = loadConfig({
    env: {
      MESHCA_UPSTREAM: 'awspca',
      MESHCA_AWSPCA_ARN: ARN,
      MESHCA_RENEW_BEFORE: '10d',
      MESHCA_PCA_ACCESS_KEY: 'AKID0001:secret-0001,AKID0002:secret-0002',
    },
    flags: { dir: tmp(), intermediateTtl: '30d', pcaInsecure: 'true', pcaApiAddr: '127.0.0.1:0' },
  });
  assert.equal(c.awspcaArn, ARN);
  assert.equal(c.intermediateTtl, 30 * 86_400);
  assert.equal(c.renewBefore, 10 * 86_400);
  assert.deepEqual(c.pcaAccessKey, ['AKID0001:secret-0001', 'AKID0002:secret-0002']);
  assert.equal(c.pcaInsecure, true);
});

test('a nested `upstream:` block in YAML is the same as the flat keys', () => {
  const dir = tmp();
  const file = join(dir, 'meshca.yaml');
  writeFileSync(
    file,
    `upstream:\n  type: awspca\n  arn: "  ${ARN}"\n  mode: ra\n  region: eu-west-1\n  endpointUrl: http://127.0.0.1:8443\n`,
  );
  const c = loadConfig({ env: {}, flags: { dir } });
  assert.equal(c.upstream, 'awspca');
  assert.equal(c.upstreamMode, 'ra');
  assert.equal(c.awspcaArn, ARN, 'trimmed');
  assert.equal(c.awspcaRegion, 'eu-west-1');
  assert.equal(c.awspcaEndpointUrl, 'http://127.0.0.1:8443');
  // A flag still beats the file.
  assert.equal(loadConfig({ env: {}, flags: { dir, upstreamMode: 'intermediate' } }).upstreamMode, 'intermediate');
  writeFileSync(file, 'upstream: awspca\nawspcaArn: ' + ARN + '\n');
  assert.equal(loadConfig({ env: {}, flags: { dir } }).upstream, 'awspca', 'the flat spelling in YAML');
  writeFileSync(file, `upstream:\n  type: awspca\n  arn: ${ARN}\n  colour: blue\n`);
  assert.throws(() => loadConfig({ env: {}, flags: { dir } }), /unknown field "upstream\.colour"/);
  writeFileSync(file, `upstream:\n  type: awspca\n  arn: ${ARN}\nawspcaArn: ${ARN}\n`);
  assert.throws(() => loadConfig({ env: {}, flags: { dir } }), /"upstream\.arn" and "awspcaArn" are both set/);
});

test('cross-field rules name the field', () => {
  const dir = tmp();
  assert.throws(() => resolveConfig({ dir, upstream: 'awspca' }), /field "awspcaArn": required when upstream is awspca/);
  assert.throws(() => resolveConfig({ dir, upstream: 'files' }), /field "upstreamCertFile": required/);
  assert.throws(() => resolveConfig({ dir, upstreamMode: 'ra' }), /field "upstreamMode": ra .* needs upstream awspca/);
  assert.throws(
    () => resolveConfig({ dir, upstream: 'awspca', awspcaArn: ARN, upstreamMode: 'ra', workers: 2 }),
    /field "workers": ra mode runs in a single process/,
  );
  // A state Secret with PCA: the Lease holder's intermediates, so only with leaderElection and in intermediate mode.
  const k8s = { dir, upstream: 'awspca' as const, awspcaArn: ARN, stateBackend: 'secret' as const, kubeconfig: 'kc' };
  assert.throws(() => resolveConfig(k8s), /field "stateBackend": .* not upstream awspca without leaderElection/);
  assert.throws(() => resolveConfig({ ...k8s, leaderElection: true, upstreamMode: 'ra' }), /not upstream awspca in RA mode/);
  assert.equal(resolveConfig({ ...k8s, leaderElection: true }).stateBackend, 'secret');
  assert.throws(
    () =>
      resolveConfig({ dir, upstream: 'files', upstreamCertFile: 'a', upstreamKeyFile: 'b', stateBackend: 'secret', leaderElection: true }),
    /not upstream files/,
  );
  // On PostgreSQL the processes share one PCA budget, so workers are allowed.
  assert.equal(
    resolveConfig({ dir, upstream: 'awspca', awspcaArn: ARN, upstreamMode: 'ra', workers: 2, storeUrl: 'postgres://u@127.0.0.1/db' })
      .workers,
    2,
  );
  assert.throws(
    () => resolveConfig({ dir, upstream: 'awspca', awspcaArn: ARN, intermediateTtl: '1h', renewBefore: '2h' }),
    /field "renewBefore": .* shorter than the intermediate TTL/,
  );
  assert.throws(() => resolveConfig({ dir, awspcaArn: 'arn:aws:s3:::bucket' }), /field "awspcaArn": expected an ACM PCA CA ARN/);
  assert.throws(
    () => resolveConfig({ dir, pcaAccessKey: ['nocolon'] }),
    (e: Error) => /field "pcaAccessKey.0"/.test(e.message),
  );
  const leaked = (() => {
    try {
      resolveConfig({ dir, pcaAccessKey: ['AK:short-secret-value'] });
      return '';
    } catch (e) {
      return (e as Error).message;
    }
  })();
  assert.ok(leaked && !leaked.includes('short-secret-value'), 'a bad access key is reported without its secret');
});

test("the flat keys fill each upstream block, which that upstream's own schema accepts", () => {
  const dir = tmp();
  const files = resolveConfig({ dir, upstream: 'files', upstreamCertFile: 'ca.pem', upstreamKeyFile: 'ca-key.pem' });
  assert.deepEqual(upstreamBlock(files), { type: 'files', certFile: 'ca.pem', keyFile: 'ca-key.pem', chainFile: undefined });
  const pca = upstreamBlock(resolveConfig({ dir, upstream: 'awspca', awspcaArn: ARN, upstreamMode: 'ra', workers: 1 }));
  assert.equal(pca.arn, ARN);
  assert.equal(pca.mode, 'ra');
  assert.deepEqual(awsPcaUpstreamSchema.parse(pca).retry.maxAttempts, 8, 'defaults of the block schema fill the rest');
  const csr = upstreamBlock(
    resolveConfig({
      dir,
      upstream: 'k8s-csr',
      k8sSignerName: 'example.com/foo',
      externalCaRoot: 'root.pem',
      k8sCsrTimeout: '2m',
      kubeconfig: 'in-cluster',
    }),
  );
  assert.deepEqual(k8sCsrUpstreamSchema.parse(csr), {
    type: 'k8s-csr',
    signerName: 'example.com/foo',
    approve: false,
    timeoutSeconds: 120,
    externalCaRoot: 'root.pem',
    kubeconfig: 'in-cluster',
  });
  assert.deepEqual(upstreamBlock(resolveConfig({ dir })), { type: 'local' });
});

test("a flat key is refused by its upstream schema's own check, named by the flat key", () => {
  const dir = tmp();
  assert.throws(() => resolveConfig({ dir, k8sCsrTimeout: '2h' }), /field "k8sCsrTimeout": .*3600/);
  assert.throws(() => resolveConfig({ dir, k8sCsrTimeout: 'soon' }), /field "k8sCsrTimeout": expected a positive duration/);
  assert.throws(() => resolveConfig({ dir, k8sSignerName: 'nope' }), /field "k8sSignerName": expected a Kubernetes signer name/);
  assert.throws(() => resolveConfig({ dir, awspcaRegion: 'EU WEST' }), /field "awspcaRegion": expected an AWS region/);
  assert.throws(
    () => resolveConfig({ dir, upstream: 'k8s-csr' }),
    (e: Error) =>
      /field "k8sSignerName": required when upstream is k8s-csr/.test(e.message) && /field "externalCaRoot": required/.test(e.message),
  );
});
