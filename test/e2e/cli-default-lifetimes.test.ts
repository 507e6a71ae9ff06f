import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { K8sDouble } from '../k8s-double/server.js';
import { opensslOk } from '../helpers/openssl.js';
import { ok, runMeshca } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { startK8sSigner } from './k8s-signer-process.js';
import { spawnServe } from './serve/helpers.js';

/** Lifetime in whole days, read by openssl rather than by meshca's own parser. */
function days(file: string): number {
  const out = opensslOk(['x509', '-noout', '-startdate', '-enddate', '-in', file]);
  const start = Date.parse(/notBefore=(.*)/.exec(out)![1]!);
  const end = Date.parse(/notAfter=(.*)/.exec(out)![1]!);
  return Math.round((end - start) / 86_400_000);
}

const ROOT = ['root', 'root-cert.pem'];
const INTERMEDIATE = ['clusters', 'default', 'cacerts', 'ca-cert.pem'];

describe('every command that creates a root or an intermediate uses the same default lifetimes: 3650 and 365 days', () => {
  const tmp = tempDir();
  const children: ChildProcess[] = [];
  let double: K8sDouble | undefined;
  after(async () => {
    for (const c of children) c.kill('SIGTERM');
    await double?.close();
    tmp.cleanup();
  });

  it('init, then intermediate', async () => {
    const dir = join(tmp.path, 'cli');
    ok(await runMeshca(['init', '--dir', dir]), 'init');
    const out = join(tmp.path, 'web');
    ok(await runMeshca(['intermediate', '--dir', dir, '--cluster', 'default', '--out', out]), 'intermediate');
    assert.equal(days(join(dir, ...ROOT)), 3650);
    assert.equal(days(join(out, 'ca-cert.pem')), 365);
  });

  it('serve, on first start', async () => {
    const dir = join(tmp.path, 'serve');
    const s = spawnServe(['--dir', dir, '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--log-level', 'warn']);
    children.push(s.child);
    assert.equal((await s.ready).createdRoot, true);
    assert.equal(days(join(dir, ...ROOT)), 3650);
    assert.equal(days(join(dir, ...INTERMEDIATE)), 365);
    assert.equal(await s.stop(), 0, s.stderr());
  });

  it('k8s-signer, on first start, and its --intermediate-days', async () => {
    double = await K8sDouble.start();
    const kubeconfig = double.writeKubeconfig(join(tmp.path, 'kubeconfig'));
    const dir = join(tmp.path, 'signer');
    await startK8sSigner({ dir, signerName: 'example.com/foo', kubeconfig }, (c) => children.push(c));
    assert.equal(days(join(dir, ...ROOT)), 3650);
    assert.equal(days(join(dir, ...INTERMEDIATE)), 365);
    const dir30 = join(tmp.path, 'signer30');
    const args = ['--intermediate-days', '30'];
    await startK8sSigner({ dir: dir30, signerName: 'example.com/bar', kubeconfig, args }, (c) => children.push(c));
    assert.equal(days(join(dir30, ...INTERMEDIATE)), 30);
  });

  it('the default is stated in each help', async () => {
    for (const cmd of ['serve', 'k8s-signer', 'intermediate']) {
      const r = ok(await runMeshca([cmd, '--help']), `${cmd} --help`);
      const i = r.stdout.indexOf('--intermediate-days');
      assert.ok(i >= 0, `${cmd} --help has no --intermediate-days`);
      assert.match(r.stdout.slice(i, i + 200), /\(default:\s+365\)/, `${cmd} --help`);
    }
    for (const cmd of ['init', 'serve']) {
      const r = ok(await runMeshca([cmd, '--help']), `${cmd} --help`);
      const i = r.stdout.indexOf('--root-days');
      assert.match(r.stdout.slice(i, i + 200), /\(default:\s+3650\)/, `${cmd} --help`);
    }
  });
});
