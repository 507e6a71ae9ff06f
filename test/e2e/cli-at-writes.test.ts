import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runMeshca, type RunResult } from '../helpers/run.js';
import { snapshotTree, tempDir } from '../helpers/tmp.js';

const HOUR = 3_600_000;

// A generated root and one-day intermediates: they renew when a tenth of the day is left.
const POLICY = `apiVersion: admin.gloo.solo.io/v2
kind: RootTrustPolicy
metadata: {name: root-trust-policy, namespace: gloo-mesh}
spec:
  config:
    mgmtServerCa:
      generated: {rsaKeySizeBytes: 2048}
    intermediateCertOptions: {ttlDays: 1, rsaKeySizeBytes: 2048}
`;

describe('--at without --dry-run', () => {
  const tmp = tempDir('meshca-at-');
  const dir = join(tmp.path, 'state');
  const meshca = (args: string[]): Promise<RunResult> => runMeshca([...args, '--dir', dir], { timeoutMs: 60_000 });
  const caCert = (): X509Certificate => new X509Certificate(readFileSync(join(dir, 'clusters', 'east', 'cacerts', 'ca-cert.pem')));
  after(() => tmp.cleanup());

  before(async () => {
    writeFileSync(join(tmp.path, 'rtp.yaml'), POLICY);
    for (const args of [
      ['cluster', 'add', 'east', '--no-reconcile'],
      ['apply', '-f', join(tmp.path, 'rtp.yaml')],
    ]) {
      const r = await meshca(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    assert.ok(Date.parse(caCert().validTo) - Date.now() < 25 * HOUR, 'a one-day intermediate');
  });

  it('reconcile --at +25h is refused, names the flags and writes nothing', async () => {
    const before = snapshotTree(dir);
    const serial = caCert().serialNumber;
    const r = await meshca(['reconcile', '--at', '+25h']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /--at \+25h .* not valid now/);
    assert.match(r.stderr, /--dry-run/);
    assert.match(r.stderr, /--allow-future-material/);
    assert.deepEqual(snapshotTree(dir), before);
    assert.equal(caCert().serialNumber, serial);
  });

  it('apply --at +25h is refused before anything is stored', async () => {
    const file = join(tmp.path, 'west.yaml');
    writeFileSync(file, 'apiVersion: meshca.io/v1alpha1\nkind: Cluster\nmetadata: {name: west}\n');
    const before = snapshotTree(dir);
    const r = await meshca(['apply', '-f', file, '--at', '+25h']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /--allow-future-material/);
    assert.deepEqual(snapshotTree(dir), before);
  });

  it('--dry-run with --at still reports the renewal and writes nothing', async () => {
    const before = snapshotTree(dir);
    const r = await meshca(['reconcile', '--at', '+25h', '--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /dry run at .*: nothing was written/);
    assert.match(r.stdout, /RootTrustPolicy gloo-mesh\/root-trust-policy: .*cluster east/);
    assert.deepEqual(snapshotTree(dir), before);
  });

  it('--allow-future-material writes the material dated at --at, not valid yet', async () => {
    const serial = caCert().serialNumber;
    const r = await meshca(['reconcile', '--at', '+25h', '--allow-future-material']);
    assert.equal(r.code, 0, r.stderr);
    const c = caCert();
    assert.notEqual(c.serialNumber, serial);
    // That is what the flag asks for: an intermediate that istiod could not use yet.
    assert.ok(Date.parse(c.validFrom) > Date.now() + 20 * HOUR, c.validFrom);
  });
});
