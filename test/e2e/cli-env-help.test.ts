import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runMeshca } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

/** The meaning `meshca --help` gives an exit code, from its "Exit codes:" section. */
function exitMeaning(help: string, code: number): string {
  const section = help.slice(help.indexOf('Exit codes:'));
  const line = section.split('\n').find((l) => l.startsWith(`  ${code}  `));
  assert.ok(line, `exit code ${code} is not listed in:\n${section}`);
  return line;
}

const KEY_COMMANDS = [
  ['serve'],
  ['token'],
  ['pca-api'],
  ['init'],
  ['root', 'import'],
  ['intermediate'],
  ['ca', 'import'],
  ['issue'],
  ['apply'],
  ['reconcile'],
  ['cluster', 'add'],
  ['cluster', 'remove'],
  ['k8s-signer'],
];

describe('environment variables and exit codes in --help', () => {
  let help = '';
  const tmp = tempDir();
  before(async () => {
    const r = await runMeshca(['--help']);
    assert.equal(r.code, 0, r.stderr);
    help = r.stdout;
  });
  after(() => tmp.cleanup());

  it('meshca --help names the environment variables meshca reads', () => {
    const env = help.slice(help.indexOf('Environment:'), help.indexOf('Exit codes:'));
    for (const name of [
      'MESHCA_HOME',
      'MESHCA_KEY_PASSPHRASE',
      'MESHCA_CONFIG',
      'KUBECONFIG',
      'AWS_REGION',
      'MESHCA_NATIVE',
      'MESHCA_DEBUG',
    ]) {
      assert.match(env, new RegExp(`^  ${name} `, 'm'), `${name} missing from:\n${env}`);
    }
  });

  it('lists the exit code of apply and reconcile for resources that ended failed', () => {
    assert.match(exitMeaning(help, 8), /resource ended failed/);
  });

  it('every command that reads or writes CA keys names MESHCA_KEY_PASSPHRASE and MESHCA_HOME', async () => {
    for (const args of KEY_COMMANDS) {
      const r = await runMeshca([...args, '--help']);
      assert.equal(r.code, 0, `${args.join(' ')} --help: ${r.stderr}`);
      assert.match(r.stdout, /^Environment:\n {2}MESHCA_HOME .*\n {2}MESHCA_KEY_PASSPHRASE /m, `meshca ${args.join(' ')} --help`);
      assert.match(r.stdout, /Exit codes: see `meshca --help`/);
    }
  });

  it('lists the exit codes the CLI really returns', async () => {
    for (let code = 0; code <= 7; code++) exitMeaning(help, code);
    const dir = join(tmp.path, 'codes');

    const usage = await runMeshca(['init', '--no-such-flag']);
    assert.equal(usage.code, 2, usage.stderr);
    assert.match(exitMeaning(help, 2), /usage error/);

    const bad = await runMeshca(['init', '--dir', dir, '--root-days', 'soon']);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(exitMeaning(help, 2), /invalid argument/);

    assert.equal((await runMeshca(['init', '--dir', dir, '--key-algorithm', 'ec-p256'])).code, 0);
    const again = await runMeshca(['init', '--dir', dir, '--key-algorithm', 'ec-p256']);
    assert.equal(again.code, 4, again.stderr);
    assert.match(exitMeaning(help, 4), /already exists/);

    const missing = await runMeshca([
      'issue',
      '--dir',
      dir,
      '--cluster',
      'nowhere',
      '--spiffe-id',
      'spiffe://cluster.local/ns/a/sa/b',
      '--out',
      join(tmp.path, 'x'),
    ]);
    assert.notEqual(missing.code, 0);
    assert.match(exitMeaning(help, missing.code), /not found|precondition/, missing.stderr);

    assert.match(exitMeaning(help, 1), /check found a problem/);
    assert.match(exitMeaning(help, 5), /key that cannot be decrypted/);
  });

  it('an encrypted key without (or with a wrong) MESHCA_KEY_PASSPHRASE names the variable, exits 5 and writes nothing', async () => {
    const dir = join(tmp.path, 'enc');
    const made = await runMeshca(['init', '--dir', dir, '--key-algorithm', 'ec-p256'], { env: { MESHCA_KEY_PASSPHRASE: 'correct horse' } });
    assert.equal(made.code, 0, made.stderr);
    assert.match(readFileSync(join(dir, 'root', 'root-key.pem'), 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);

    const out = join(tmp.path, 'enc-out');
    const none = await runMeshca(['intermediate', '--dir', dir, '--cluster', 'east', '--out', out]);
    assert.equal(none.code, 5, none.stderr);
    assert.match(none.stderr, /root-key\.pem: the key is encrypted.*set MESHCA_KEY_PASSPHRASE/);
    assert.equal(exitMeaning(help, 5).includes('decrypted'), true);

    const wrong = await runMeshca(['intermediate', '--dir', dir, '--cluster', 'east', '--out', out], {
      env: { MESHCA_KEY_PASSPHRASE: 'wrong' },
    });
    assert.equal(wrong.code, 5, wrong.stderr);
    assert.match(wrong.stderr, /MESHCA_KEY_PASSPHRASE does not decrypt it/);
    assert.equal(existsSync(out), false, 'no bundle written');
    assert.equal(existsSync(join(dir, 'clusters', 'east')), false, 'no cluster state written');

    const right = await runMeshca(['intermediate', '--dir', dir, '--cluster', 'east', '--out', out], {
      env: { MESHCA_KEY_PASSPHRASE: 'correct horse' },
    });
    assert.equal(right.code, 0, right.stderr);
  });
});
