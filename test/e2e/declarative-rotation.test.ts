import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { parseCertificates } from '../../src/pki/certificate.js';
import { opensslVerify } from '../helpers/openssl.js';
import { runMeshca, ok } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { rootTrustPolicyYaml } from './reload-helpers.js';

const POLICY = rootTrustPolicyYaml();

const rotation = (pauseAfter?: string) => `apiVersion: meshca.io/v1alpha1
kind: RootRotation
metadata:
  name: rotate-root
spec:
  rootTrustPolicyRef:
    name: root-trust-policy
  newRoot:
    generated:
      rsaKeySizeBytes: 2048
  # Real time is used here (compare-roots checks validity now), so the workload windows are short.
  workloadRenewalWindow: 2s
${pauseAfter ? `  pauseAfter: ${pauseAfter}\n` : ''}`;

describe('declarative PKI: root rotation over two clusters, phase by phase, compare-roots after each step', () => {
  const tmp = tempDir('meshca-decl-rot-');
  const dir = join(tmp.path, 'state');
  const meshca = (args: string[]) => runMeshca([...args, '--dir', dir], { timeoutMs: 60_000 });
  const bundle = (c: string) => join(dir, 'clusters', c, 'cacerts');
  const roots = (c: string) => parseCertificates(readFileSync(join(bundle(c), 'root-cert.pem'), 'utf8')).map((r) => r.fingerprint256);
  const issuerOf = (c: string) => parseCertificates(readFileSync(join(bundle(c), 'cert-chain.pem'), 'utf8')).at(-1)!.fingerprint256;
  after(() => tmp.cleanup());

  async function applyRotation(pauseAfter?: string): Promise<void> {
    const f = join(tmp.path, 'rotation.yaml');
    writeFileSync(f, rotation(pauseAfter));
    ok(await meshca(['apply', '-f', f]), `apply rotation (pauseAfter ${pauseAfter ?? 'none'})`);
  }

  async function phase(): Promise<{ phase?: string; newRootFingerprint?: string; oldRootFingerprint?: string; message?: string }> {
    return parseYaml(ok(await meshca(['get', 'rootrotation', 'rotate-root', '-o', 'yaml']), 'get rootrotation').stdout).status ?? {};
  }

  async function compareRoots(): Promise<void> {
    ok(await runMeshca(['compare-roots', bundle('east'), bundle('west')]), 'compare-roots');
    for (const c of ['east', 'west']) {
      const v = opensslVerify(join(bundle(c), 'root-cert.pem'), join(bundle(c), 'ca-cert.pem'), join(bundle(c), 'cert-chain.pem'));
      assert.equal(v.code, 0, `${c}: ${v.stderr}`);
    }
  }

  let oldRoot: string;

  it('starts from a generated policy over two clusters', async () => {
    ok(await meshca(['cluster', 'add', 'east', '--no-reconcile']), 'add east');
    ok(await meshca(['cluster', 'add', 'west', '--no-reconcile']), 'add west');
    const f = join(tmp.path, 'policy.yaml');
    writeFileSync(f, POLICY);
    ok(await meshca(['apply', '-f', f]), 'apply policy');
    oldRoot = roots('east')[0];
    assert.deepEqual(roots('west'), [oldRoot]);
    await compareRoots();
  });

  it('NewRootCreated (paused): the new root exists, no bundle has changed', async () => {
    await applyRotation('NewRootCreated');
    const s = await phase();
    assert.equal(s.phase, 'NewRootCreated');
    assert.equal(s.oldRootFingerprint, oldRoot);
    assert.deepEqual(roots('east'), [oldRoot]);
    const table = ok(await meshca(['get', 'rootrotation']), 'get').stdout;
    assert.match(table, /rotate-root\s+root-trust-policy\s+NewRootCreated\s+paused after NewRootCreated/);
    await compareRoots();
  });

  it('TrustBundleExpanded: every cluster trusts old and new; intermediates still under the old root', async () => {
    await applyRotation('TrustBundleExpanded');
    const s = await phase();
    assert.equal(s.phase, 'TrustBundleExpanded');
    for (const c of ['east', 'west']) {
      assert.deepEqual(roots(c).sort(), [oldRoot, s.newRootFingerprint!].sort());
      assert.equal(issuerOf(c), oldRoot);
    }
    await compareRoots();
  });

  it('IntermediatesReissued: after the window, intermediates chain to the new root; both still trusted', async () => {
    await sleep(2100);
    await applyRotation('IntermediatesReissued');
    const s = await phase();
    assert.equal(s.phase, 'IntermediatesReissued', s.message);
    for (const c of ['east', 'west']) {
      assert.equal(issuerOf(c), s.newRootFingerprint);
      assert.equal(roots(c).length, 2);
    }
    await compareRoots();
  });

  it('Complete: after the second window the old root is withdrawn and the new one is the meshca root', async () => {
    await sleep(2100);
    await applyRotation();
    const s = await phase();
    assert.equal(s.phase, 'Complete', s.message);
    for (const c of ['east', 'west']) assert.deepEqual(roots(c), [s.newRootFingerprint]);
    assert.equal(parseCertificates(readFileSync(join(dir, 'root', 'root-cert.pem'), 'utf8'))[0].fingerprint256, s.newRootFingerprint);
    await compareRoots();
    const again = ok(await meshca(['reconcile']), 'reconcile').stdout;
    assert.match(again, /^nothing to do at /m);
  });
});
