import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, runMeshca } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('meshca-completion-');
after(() => tmp.cleanup());

function installed(shell: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${shell}`]).status === 0;
}

describe('meshca version', () => {
  it('prints the package version, Node and OpenSSL versions and the platform, as text and as JSON', async () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const json = await runMeshca(['version', '-o', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const info = JSON.parse(json.stdout) as Record<string, string>;
    assert.equal(info.meshca, pkg.version);
    assert.equal(info.node, process.versions.node);
    assert.equal(info.openssl, process.versions.openssl);
    assert.equal(info.platform, `${process.platform}/${process.arch}`);
    const text = await runMeshca(['version']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^meshca: +${pkg.version.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(text.stdout, new RegExp(`^openssl: +${process.versions.openssl.replace(/\./g, '\\.')}$`, 'm'));
    const bad = await runMeshca(['version', '-o', 'yaml']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /Allowed choices are text, json/);
  });
});

describe('meshca completion', () => {
  let script = '';
  before(async () => {
    const r = await runMeshca(['completion', 'bash']);
    assert.equal(r.code, 0, r.stderr);
    script = join(tmp.path, 'meshca.bash');
    writeFileSync(script, r.stdout);
  });

  /** What bash completes for the words typed so far (the last one being completed). */
  function complete(words: string[]): string[] {
    const r = spawnSync(
      'bash',
      [
        '-c',
        `source "$1"; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _meshca; printf '%s\\n' "\${COMPREPLY[@]}"`,
        'bash',
        script,
      ],
      { encoding: 'utf8', cwd: tmp.path },
    );
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean);
  }

  it('bash accepts the script, and it registers a completion for meshca', () => {
    const n = spawnSync('bash', ['-n', script], { encoding: 'utf8' });
    assert.equal(n.status, 0, n.stderr);
    const p = spawnSync('bash', ['-c', 'source "$1" && complete -p meshca', 'bash', script], { encoding: 'utf8' });
    assert.equal(p.status, 0, p.stderr);
    assert.match(p.stdout, /complete .*-F _meshca meshca/);
  });

  it('completes commands, subcommands and each command’s own options from the program tree', () => {
    assert.deepEqual(complete(['meshca', 'ro']), ['root']);
    assert.deepEqual(complete(['meshca', 'cluster', '']).sort(), ['add', 'list', 'remove']);
    assert.deepEqual(complete(['meshca', 'root', 'im']), ['import']);
    assert.deepEqual(complete(['meshca', 'serve', '--grpc-a']), ['--grpc-addr']);
    assert.deepEqual(complete(['meshca', 'root', 'import', '--ce']), ['--cert']);
    assert.ok(complete(['meshca', 'k8s-signer', '--']).includes('--kubeconfig'));
    // Options belong to their command: init has no --grpc-addr.
    assert.deepEqual(complete(['meshca', 'init', '--grpc-a']), []);
  });

  it('zsh and fish scripts are generated from the same tree', async () => {
    const zsh = await runMeshca(['completion', 'zsh']);
    assert.equal(zsh.code, 0, zsh.stderr);
    assert.match(zsh.stdout, /bashcompinit/);
    assert.match(zsh.stdout, /complete -o filenames -F _meshca meshca/);
    const fish = await runMeshca(['completion', 'fish']);
    assert.equal(fish.code, 0, fish.stderr);
    assert.match(fish.stdout, /complete -c meshca -n '__fish_use_subcommand' -a 'k8s-signer'/);
    assert.match(
      fish.stdout,
      /complete -c meshca -n '__fish_seen_subcommand_from root; and not __fish_seen_subcommand_from import' -a 'import'/,
    );
    assert.match(fish.stdout, /__fish_seen_subcommand_from serve' -l grpc-addr/);
    for (const [shell, text] of [
      ['zsh', zsh.stdout],
      ['fish', fish.stdout],
    ]) {
      if (!installed(shell)) continue; // not installed here: only the bash script's syntax is checked by a shell
      const file = join(tmp.path, `meshca.${shell}`);
      writeFileSync(file, text);
      const r = spawnSync(shell, ['-n', file], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${shell} -n: ${r.stderr}`);
    }
    const bad = await runMeshca(['completion', 'powershell']);
    assert.equal(bad.code, 2);
  });
});
