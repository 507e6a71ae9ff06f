import assert from 'node:assert/strict';
import {
  lstatSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
  mkdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DATA_LINK, publishFiles } from './publish.js';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'meshca-publish-'));
  dirs.push(d);
  return d;
}
const versions = (d: string) => readdirSync(d).filter((n) => /^\.\.\d{4}_/.test(n));
const files = (v: string) => [
  { name: 'cert-chain.pem', data: `cert ${v}` },
  { name: 'key.pem', data: `key ${v}`, mode: 0o600 },
  { name: 'root-cert.pem', data: 'root' },
];

test('files are symlinks through ..data into one version directory; the key keeps 0600', () => {
  const d = tmp();
  publishFiles(d, files('1'), new Date(Date.UTC(2030, 0, 2, 3, 4, 5)));
  const [v] = versions(d);
  assert.match(v, /^\.\.2030_01_02_03_04_05\.[0-9a-f]{8}$/);
  assert.equal(readlinkSync(join(d, DATA_LINK)), v);
  for (const n of ['cert-chain.pem', 'key.pem', 'root-cert.pem']) {
    assert.ok(lstatSync(join(d, n)).isSymbolicLink());
    assert.equal(readlinkSync(join(d, n)), join(DATA_LINK, n));
  }
  assert.equal(readFileSync(join(d, 'key.pem'), 'utf8'), 'key 1');
  assert.equal(statSync(join(d, 'key.pem')).mode & 0o777, 0o600);
  assert.deepEqual(
    readdirSync(d)
      .filter((n) => !n.startsWith('.'))
      .sort(),
    ['cert-chain.pem', 'key.pem', 'root-cert.pem'],
  );
});

test('a new publication swaps every file at once and removes the previous version', () => {
  const d = tmp();
  publishFiles(d, files('1'));
  const [v1] = versions(d);
  // A reader that resolved ..data before the swap keeps reading one consistent version.
  const pinned = join(d, readlinkSync(join(d, DATA_LINK)));
  assert.equal(readFileSync(join(pinned, 'cert-chain.pem'), 'utf8'), 'cert 1');
  publishFiles(d, files('2'));
  const vs = versions(d);
  assert.equal(vs.length, 1);
  assert.notEqual(vs[0], v1);
  assert.equal(readFileSync(join(d, 'cert-chain.pem'), 'utf8'), 'cert 2');
  assert.equal(readFileSync(join(d, 'key.pem'), 'utf8'), 'key 2');
});

test('plain files from an older layout are converted, and leftovers of an interrupted run cleared', () => {
  const d = tmp();
  writeFileSync(join(d, 'cert-chain.pem'), 'old cert');
  writeFileSync(join(d, 'key.pem'), 'old key');
  mkdirSync(join(d, '..2020_01_01_00_00_00.deadbeef'));
  symlinkSync('x', join(d, '.key.pem.0123456789ab.link'));
  writeFileSync(join(d, 'notes.txt'), 'mine');
  publishFiles(d, files('3'));
  assert.equal(readFileSync(join(d, 'cert-chain.pem'), 'utf8'), 'cert 3');
  assert.ok(lstatSync(join(d, 'key.pem')).isSymbolicLink());
  assert.equal(versions(d).length, 1);
  assert.deepEqual(
    readdirSync(d).filter((n) => n.endsWith('.link')),
    [],
  );
  assert.equal(readFileSync(join(d, 'notes.txt'), 'utf8'), 'mine', "other people's files are left alone");
});
