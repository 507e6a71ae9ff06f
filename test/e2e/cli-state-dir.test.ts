import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runMeshca } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';

const POLICY = `apiVersion: meshca.io/v1alpha1
kind: Cluster
metadata:
  name: east
`;

describe('a missing state directory', () => {
  const tmp = tempDir('meshca-statedir-');
  after(() => tmp.cleanup());
  const missing = join(tmp.path, 'typo', '.meshca');
  const out = join(tmp.path, 'out');

  // Commands that only read or change what is there: none may create the directory.
  const readers: string[][] = [
    ['token', '-n', 'default', '-s', 'web'],
    ['get', 'clusters'],
    ['get', 'certificates'],
    ['reconcile'],
    ['reconcile', '--at', '+30d', '--dry-run'],
    ['delete', 'certificate', 'web'],
    ['cluster', 'list'],
    ['cluster', 'remove', 'east'],
    ['pca-api', '--list-arns'],
    ['issue', '--cluster', 'east', '--spiffe-id', 'spiffe://cluster.local/ns/default/sa/web', '--out', out],
    ['intermediate', '--cluster', 'east', '--out', out],
    ['doctor'],
  ];
  for (const args of readers) {
    it(`meshca ${args.join(' ')} --dir MISSING is refused and creates nothing`, async () => {
      const r = await runMeshca([...args, '--dir', missing]);
      assert.equal(r.code, 3, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, new RegExp(`state directory ${missing.replace(/[.]/g, '\\.')} does not exist \\(from --dir\\)`));
      assert.equal(r.stdout, '');
      assert.equal(existsSync(join(tmp.path, 'typo')), false, 'nothing is created');
      assert.equal(existsSync(out), false, 'no --out directory either');
    });
  }

  it('names $MESHCA_HOME when that chose the directory', async () => {
    const r = await runMeshca(['get', 'clusters'], { env: { MESHCA_HOME: missing } });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /does not exist \(from \$MESHCA_HOME\)/);
    assert.ok(r.stderr.includes(missing), r.stderr);
    assert.equal(existsSync(join(tmp.path, 'typo')), false);
  });

  it('names $MESHCA_DIR for token, which shares it with serve', async () => {
    const r = await runMeshca(['token', '-n', 'default', '-s', 'web'], { env: { MESHCA_DIR: missing } });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /does not exist \(from \$MESHCA_DIR\)/);
    assert.equal(existsSync(join(tmp.path, 'typo')), false);
  });

  it('names the default ./.meshca when neither --dir nor $MESHCA_HOME is set', async () => {
    const cwd = join(tmp.path, 'cwd');
    mkdirSync(cwd);
    const r = await runMeshca(['token', '-n', 'default', '-s', 'web'], { cwd });
    assert.equal(r.code, 3, r.stderr);
    assert.ok(r.stderr.includes(join(cwd, '.meshca')), r.stderr);
    assert.match(r.stderr, /from the default \.\/\.meshca/);
    assert.deepEqual(readdirSync(cwd), []);
  });
});

describe('commands that create a state directory say so', () => {
  const tmp = tempDir('meshca-statedir-create-');
  after(() => tmp.cleanup());

  it('init creates it, says so once, and later commands read it', async () => {
    const dir = join(tmp.path, 'a');
    const r = await runMeshca(['init', '--key-algorithm', 'ec-p256', '--dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stderr.includes(`created state directory ${dir} (from --dir)`), r.stderr);
    assert.ok(existsSync(join(dir, 'root', 'root-cert.pem')));
    const again = await runMeshca(['cluster', 'add', 'east', '--no-reconcile', '--dir', dir]);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /created state directory/);
    const list = await runMeshca(['cluster', 'list', '--dir', dir]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^east\s/m);
  });

  it('apply creates it and says so', async () => {
    const dir = join(tmp.path, 'b');
    const file = join(tmp.path, 'cluster.yaml');
    writeFileSync(file, POLICY);
    const r = await runMeshca(['apply', '-f', file, '--no-reconcile', '--dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stderr.includes(`created state directory ${dir}`), r.stderr);
    assert.match(r.stdout, /cluster\.meshca\.io\/east created/);
  });

  it('apply of a bad manifest creates nothing', async () => {
    const dir = join(tmp.path, 'c');
    const file = join(tmp.path, 'bad.yaml');
    writeFileSync(file, 'kind: NoSuchKind\n');
    const r = await runMeshca(['apply', '-f', file, '--dir', dir]);
    assert.notEqual(r.code, 0);
    assert.equal(existsSync(dir), false);
  });

  it('cluster add creates it and says so', async () => {
    const dir = join(tmp.path, 'd');
    const r = await runMeshca(['cluster', 'add', 'west', '--no-reconcile', '--dir', dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stderr.includes(`created state directory ${dir}`), r.stderr);
  });
});
