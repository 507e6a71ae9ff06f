import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/program.js';
import { loadConfig } from '../../src/config/index.js';
import { K8sDouble } from '../k8s-double/server.js';
import { x509Text } from '../helpers/openssl.js';
import { ok, runMeshca } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { startK8sSigner } from './k8s-signer-process.js';
import { spawnServe } from './serve/helpers.js';

/**
 * One setting, one flag name in every command that has it: the canonical name shown in each
 * command's --help, and the old names each command accepted before, still parsed but hidden.
 */
const SETTINGS: { setting: string; flag: string; value: string; old: Record<string, string[]> }[] = [
  {
    setting: 'endpoint of the AWS Private CA meshca calls',
    flag: '--awspca-endpoint-url',
    value: 'http://127.0.0.1:1',
    old: { serve: [], 'gen-ca': ['--endpoint-url'] },
  },
  {
    setting: 'region of the AWS Private CA meshca calls',
    flag: '--awspca-region',
    value: 'eu-west-1',
    old: { serve: [], 'gen-ca': ['--region'] },
  },
  {
    setting: 'listen address of the PCA-compatible API meshca serves',
    flag: '--pca-api-addr',
    value: '127.0.0.1:0',
    old: { serve: ['--pca-api'], 'pca-api': ['--addr', '--pca-api'] },
  },
  { setting: 'region of the PCA-compatible API', flag: '--pca-region', value: 'eu-west-1', old: { serve: [], 'pca-api': ['--region'] } },
  {
    setting: 'account of the PCA-compatible API',
    flag: '--pca-account',
    value: '123456789012',
    old: { serve: [], 'pca-api': ['--account'] },
  },
  { setting: 'namespace of the Lease', flag: '--k8s-namespace', value: 'meshca-system', old: { serve: [], 'k8s-signer': ['--namespace'] } },
  {
    setting: 'signer names the CSR signer controller signs for',
    flag: '--signer-names',
    value: 'example.com/foo',
    old: { serve: [], 'k8s-signer': ['--signer-name'] },
  },
  {
    setting: 'key algorithm of a created key',
    flag: '--key-algorithm',
    value: 'ec-p256',
    old: { serve: [], 'k8s-signer': ['--key'], init: ['--key'], intermediate: ['--key'], issue: ['--key'], agent: ['--key'] },
  },
  { setting: 'lifetime of a created root', flag: '--root-days', value: '30', old: { serve: [], init: ['--days'] } },
  { setting: 'lifetime of a created intermediate', flag: '--intermediate-days', value: '30', old: { serve: [], intermediate: ['--days'] } },
  { setting: "Istio's namespace", flag: '--istio-namespace', value: 'mesh-system', old: { serve: [], intermediate: ['--namespace'] } },
];

/** Other options each command needs to reach its action. */
const REQUIRED: Record<string, string[]> = {
  'gen-ca': ['--config-file', 'x.yaml'],
  intermediate: ['--cluster', 'c1', '--out', 'out'],
  issue: ['--cluster', 'c1', '--spiffe-id', 'spiffe://cluster.local/ns/a/sa/b', '--out', 'out'],
  agent: ['--ca-addr', '127.0.0.1:1', '--out', 'out'],
  'k8s-signer': ['--signer-names', 'example.com/other'],
};

function sub(program: Command, name: string): Command {
  const c = program.commands.find((x) => x.name() === name);
  assert.ok(c, `no command ${name}`);
  return c;
}

/** Parses `args` for `name` with its action replaced, returning the options the action would get and what went to stderr. */
async function parsed(name: string, args: string[]): Promise<{ opts: Record<string, unknown>; stderr: string; error?: Error }> {
  const program = await buildProgram(['node', 'meshca', name]);
  const cmd = sub(program, name);
  cmd.configureOutput({ writeErr: () => {}, writeOut: () => {}, outputError: () => {} });
  let opts: Record<string, unknown> = {};
  cmd.action((o: Record<string, unknown>) => void (opts = o));
  let stderr = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  try {
    await program.parseAsync(['node', 'meshca', name, ...args]);
    return { opts, stderr };
  } catch (e) {
    return { opts, stderr, error: e as Error };
  } finally {
    process.stderr.write = write;
  }
}

describe('one flag name per setting in every command', () => {
  it('each setting shows its canonical name in every command that has it; the old names are hidden', async () => {
    const program = await buildProgram(['node', 'meshca']);
    for (const s of SETTINGS) {
      for (const [name, olds] of Object.entries(s.old)) {
        const cmd = sub(program, name);
        const help = cmd.helpInformation();
        const opt = cmd.options.find((o) => o.long === s.flag);
        assert.ok(opt && !opt.hidden, `${name} has no visible ${s.flag} (${s.setting})`);
        assert.match(help, new RegExp(`^  ${s.flag} `, 'm'), `${name} --help does not show ${s.flag}`);
        for (const old of olds) {
          const alias = cmd.options.find((o) => o.long === old);
          assert.ok(alias?.hidden, `${name} ${old} should still exist, hidden`);
          assert.doesNotMatch(help, new RegExp(`^  ${old} `, 'm'), `${name} --help still shows ${old}`);
        }
      }
    }
  });

  it('an old name gives the action the same value as the canonical name, with a note on stderr', async () => {
    for (const s of SETTINGS) {
      for (const [name, olds] of Object.entries(s.old)) {
        const rest = (REQUIRED[name] ?? []).filter((_, i, a) => a[i] !== s.flag && a[i - 1] !== s.flag);
        const want = await parsed(name, [...rest, s.flag, s.value]);
        assert.equal(want.error, undefined, `${name} ${s.flag}: ${want.error?.message}`);
        assert.equal(want.stderr, '');
        const key = Object.keys(want.opts).find((k) => k.toLowerCase() === s.flag.replace(/-/g, '').toLowerCase());
        assert.ok(key, `${name}: ${s.flag} reached the action under no name: ${JSON.stringify(want.opts)}`);
        for (const old of olds) {
          const got = await parsed(name, [...rest, old, s.value]);
          assert.equal(got.error, undefined, `${name} ${old}: ${got.error?.message}`);
          assert.deepEqual(got.opts[key], want.opts[key], `${name} ${old} ${s.value}`);
          const oldKey = old.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
          if (oldKey !== key) assert.equal(got.opts[oldKey], undefined, `${name}: the action still sees ${old}`);
          assert.equal(got.stderr, `meshca: ${old} is deprecated; use ${s.flag}\n`);
        }
      }
    }
  });

  it('refuses an old name and its canonical name together', async () => {
    const r = await parsed('init', ['--key', 'ec-p256', '--key-algorithm', 'rsa-2048']);
    assert.match(r.error?.message ?? '', /--key is the old name of --key-algorithm; give only --key-algorithm/);
    const two = await parsed('pca-api', ['--addr', '127.0.0.1:1', '--pca-api', '127.0.0.1:2']);
    assert.match(two.error?.message ?? '', /--pca-api is the old name of --pca-api-addr/);
    const missing = await parsed('k8s-signer', []);
    assert.match(missing.error?.message ?? '', /required option '--signer-names <names>' not specified/);
  });

  it('serve reads the old pcaApi key from YAML and MESHCA_PCA_API, and refuses it beside pcaApiAddr', () => {
    const t = tempDir();
    try {
      // Not meshca.yaml: loadConfig would read it from the state directory without being asked.
      const file = join(t.path, 'config.yaml');
      writeFileSync(file, 'pcaApi: 127.0.0.1:0\npcaInsecure: true\n');
      assert.equal(loadConfig({ configFile: file, env: {}, flags: { dir: t.path } }).pcaApiAddr, '127.0.0.1:0');
      assert.equal(loadConfig({ env: { MESHCA_PCA_API: '127.0.0.1:7' }, flags: { dir: t.path } }).pcaApiAddr, '127.0.0.1:7');
      writeFileSync(file, 'pcaApi: 127.0.0.1:0\npcaApiAddr: 127.0.0.1:1\n');
      assert.throws(() => loadConfig({ configFile: file, env: {}, flags: { dir: t.path } }), /"pcaApi" is the old name of "pcaApiAddr"/);
      assert.throws(
        () => loadConfig({ env: { MESHCA_PCA_API: '127.0.0.1:7', MESHCA_PCA_API_ADDR: '127.0.0.1:8' }, flags: { dir: t.path } }),
        /MESHCA_PCA_API is the old name of MESHCA_PCA_API_ADDR/,
      );
    } finally {
      t.cleanup();
    }
  });
});

/** RSA 2048 by node:crypto and by the openssl CLI. */
function assertRsa2048(file: string): void {
  const cert = new X509Certificate(readFileSync(file));
  assert.equal(cert.publicKey.asymmetricKeyType, 'rsa', file);
  assert.equal(cert.publicKey.asymmetricKeyDetails?.modulusLength, 2048, file);
  const text = x509Text(file);
  assert.match(text, /Public Key Algorithm: rsaEncryption/);
  assert.match(text, /Public-Key: \(2048 bit\)/);
}

describe("every command that creates a CA key defaults to RSA 2048 (Istio's default), and says so", () => {
  const tmp = tempDir();
  const children: ChildProcess[] = [];
  let double: K8sDouble | undefined;
  after(async () => {
    for (const c of children) c.kill('SIGTERM');
    await double?.close();
    tmp.cleanup();
  });

  it('init', async () => {
    const dir = join(tmp.path, 'init');
    ok(await runMeshca(['init', '--dir', dir]), 'init');
    assertRsa2048(join(dir, 'root', 'root-cert.pem'));
  });

  it('serve, on first start', async () => {
    const dir = join(tmp.path, 'serve');
    const s = spawnServe(['--dir', dir, '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--log-level', 'warn']);
    children.push(s.child);
    assert.equal((await s.ready).createdRoot, true);
    assertRsa2048(join(dir, 'root', 'root-cert.pem'));
    assertRsa2048(join(dir, 'clusters', 'default', 'cacerts', 'ca-cert.pem'));
    assert.equal(await s.stop(), 0, s.stderr());
  });

  it('k8s-signer, on first start', async () => {
    double = await K8sDouble.start();
    const kubeconfig = double.writeKubeconfig(join(tmp.path, 'kubeconfig'));
    const dir = join(tmp.path, 'signer');
    const first = await startK8sSigner({ dir, signerName: 'example.com/foo', kubeconfig }, (c) => children.push(c));
    assertRsa2048(first.rootFile);
    assertRsa2048(join(dir, 'clusters', 'default', 'cacerts', 'ca-cert.pem'));
  });

  it('the default is stated in each help', async () => {
    for (const cmd of ['init', 'serve', 'k8s-signer', 'intermediate', 'agent', 'issue']) {
      const r = ok(await runMeshca([cmd, '--help']), `${cmd} --help`);
      const line = r.stdout.slice(r.stdout.indexOf('--key-algorithm'));
      assert.match(line.slice(0, 400), /default:?\s+"?rsa-2048/, `${cmd} --help`);
    }
  });

  it('an old name still works end to end, and a refused pair creates nothing', async () => {
    const dir = join(tmp.path, 'old');
    const r = ok(await runMeshca(['init', '--dir', dir, '--key', 'ec-p256', '--days', '30']), 'init with old names');
    assert.match(r.stderr, /^meshca: --key is deprecated; use --key-algorithm$/m);
    assert.match(r.stderr, /^meshca: --days is deprecated; use --root-days$/m);
    assert.match(r.stdout, /key: {9}EC P-256/);
    const cert = new X509Certificate(readFileSync(join(dir, 'root', 'root-cert.pem')));
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(Math.round((Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000), 30);
    const both = join(tmp.path, 'both');
    const refused = await runMeshca(['init', '--dir', both, '--days', '30', '--root-days', '31']);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /--days is the old name of --root-days; give only --root-days/);
    assert.equal(existsSync(both), false);
  });
});
