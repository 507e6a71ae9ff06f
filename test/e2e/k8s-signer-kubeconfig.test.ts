import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { K8sDouble } from '../k8s-double/index.js';
import { runMeshca } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { startK8sSigner } from './k8s-signer-process.js';

const tmp = tempDir('meshca-k8s-signer-kubeconfig-');
after(() => tmp.cleanup());

/** A kubeconfig whose server nothing listens on (port 9, discard, is closed on test machines). */
function deadKubeconfig(path: string): string {
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      'current-context: dead',
      'clusters:',
      '- name: dead',
      '  cluster: { server: "https://127.0.0.1:9", insecure-skip-tls-verify: true }',
      'users:',
      '- name: u',
      '  user: { token: t }',
      'contexts:',
      '- name: dead',
      '  context: { cluster: dead, user: u }',
      '',
    ].join('\n'),
  );
  return path;
}

function signer(dir: string, extra: string[], env: Record<string, string | undefined>) {
  // The timeout only turns a hang into a failure; the assertions are on the exit and the message.
  return runMeshca(['k8s-signer', '--dir', dir, '--signer-names', 'example.com/foo', ...extra], { env, timeoutMs: 60_000 });
}

describe('k8s-signer without a usable kubeconfig: exits non-zero, names the kubeconfig, creates nothing', () => {
  it('no --kubeconfig, no $KUBECONFIG, no ~/.kube/config, not in a pod', async () => {
    const home = join(tmp.path, 'empty-home');
    mkdirSync(home);
    const dir = join(tmp.path, 'state-none');
    const r = await signer(dir, [], { HOME: home, KUBECONFIG: undefined, KUBERNETES_SERVICE_HOST: undefined });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /no kubeconfig found/);
    assert.ok(r.stderr.includes(join(home, '.kube', 'config')), r.stderr);
    assert.match(r.stderr, /\$KUBECONFIG not set/);
    assert.equal(existsSync(dir), false, 'no state directory');
  });

  it('--kubeconfig pointing at a server nothing listens on', async () => {
    const kubeconfig = deadKubeconfig(join(tmp.path, 'dead-flag.yaml'));
    const dir = join(tmp.path, 'state-flag');
    const r = await signer(dir, ['--kubeconfig', kubeconfig], {});
    assert.equal(r.code, 7, r.stderr);
    assert.ok(r.stderr.includes(`kubeconfig ${kubeconfig}`), r.stderr);
    assert.match(r.stderr, /127\.0\.0\.1:9/);
    assert.equal(existsSync(dir), false, 'no state directory');
  });

  it('$KUBECONFIG pointing at a server nothing listens on', async () => {
    const kubeconfig = deadKubeconfig(join(tmp.path, 'dead-env.yaml'));
    const dir = join(tmp.path, 'state-env');
    const r = await signer(dir, [], { KUBECONFIG: kubeconfig });
    assert.equal(r.code, 7, r.stderr);
    assert.ok(r.stderr.includes(`kubeconfig ${kubeconfig} (from $KUBECONFIG)`), r.stderr);
    assert.equal(existsSync(dir), false, 'no state directory');
  });

  it('a kubeconfig whose server does not speak TLS (the handshake fails)', async () => {
    const double = await K8sDouble.start();
    try {
      const kubeconfig = double.writeKubeconfig(join(tmp.path, 'plain.yaml'));
      writeFileSync(kubeconfig, readFileSync(kubeconfig, 'utf8').replace('http://', 'https://'));
      const dir = join(tmp.path, 'state-tls');
      const r = await signer(dir, ['--kubeconfig', kubeconfig], {});
      assert.equal(r.code, 7, r.stderr);
      assert.ok(r.stderr.includes(`kubeconfig ${kubeconfig}`), r.stderr);
      assert.equal(existsSync(dir), false, 'no state directory');
    } finally {
      await double.close();
    }
  });

  it('--kubeconfig naming a missing file', async () => {
    const missing = join(tmp.path, 'no-such-kubeconfig');
    const dir = join(tmp.path, 'state-missing');
    const r = await signer(dir, ['--kubeconfig', missing], {});
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`kubeconfig ${missing} cannot be used`), r.stderr);
    assert.equal(existsSync(dir), false, 'no state directory');
  });

  it('a reachable API server: starts, and only then creates its root', async () => {
    const double = await K8sDouble.start();
    let child: ChildProcess | undefined;
    try {
      const dir = join(tmp.path, 'state-ok');
      const kubeconfig = double.writeKubeconfig(join(tmp.path, 'ok.yaml'));
      const started = await startK8sSigner({ dir, signerName: 'example.com/foo', kubeconfig }, (c) => (child = c));
      assert.equal(existsSync(started.rootFile), true);
    } finally {
      child?.kill('SIGTERM');
      await double.close();
    }
  });
});
