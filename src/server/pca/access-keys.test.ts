import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runMeshca } from '../../../test/helpers/run.js';
import { tempDir } from '../../../test/helpers/tmp.js';
import { EXAMPLE_ACCESS_KEY, parseAccessKey, readAccessKeysFile } from './access-keys.js';

const refusal = (spec: string): string => {
  try {
    parseAccessKey(spec);
  } catch (e) {
    return (e as Error).message;
  }
  return assert.fail(`${spec} was accepted`);
};

test('a refused access key names the flag, the rule and an example that works, never the secret', () => {
  const short = refusal('AKIDEXAMPLE:secret');
  assert.match(short, /^--pca-access-key: /);
  assert.match(short, /the secret of AKIDEXAMPLE is 6 characters; it must be at least 8/);
  assert.ok(short.includes(`e.g. --pca-access-key ${EXAMPLE_ACCESS_KEY}`), short);
  assert.equal(short.includes(':secret'), false, 'the secret is not repeated');

  assert.match(refusal('AKIDEXAMPLE'), /no ":" between the access key id and the secret/);
  const badId = refusal('AK-ID/x:a-secret-of-ours');
  assert.match(badId, /the access key id \(before ":"\) must be 4 to 128 letters and digits/);
  assert.equal(badId.includes('a-secret-of-ours'), false);

  // The example every message shows is itself accepted.
  assert.deepEqual(parseAccessKey(EXAMPLE_ACCESS_KEY), { id: 'AKIDEXAMPLE', secret: 'wJalrXUtnFEMI' });
});

test('a refused line of --pca-access-keys-file names the file and line', () => {
  const tmp = tempDir('meshca-access-keys-');
  try {
    const file = join(tmp.path, 'keys');
    writeFileSync(file, `# keys\n${EXAMPLE_ACCESS_KEY}\nAKIDSHORT:abc\n`);
    assert.throws(
      () => readAccessKeysFile(file),
      (e: Error) =>
        e.message.startsWith(`--pca-access-keys-file ${file} line 3: the secret of AKIDSHORT is 3 characters`) &&
        e.message.includes(`e.g. a line ${EXAMPLE_ACCESS_KEY}`),
    );
  } finally {
    tmp.cleanup();
  }
});

test('the access key every --help shows is one that is accepted', async () => {
  for (const cmd of ['pca-api', 'serve']) {
    const help = await runMeshca([cmd, '--help']);
    assert.equal(help.code, 0, help.stderr);
    const option = help.stdout.slice(help.stdout.indexOf('--pca-access-key '), help.stdout.indexOf('--pca-access-keys-file'));
    const shown = option.match(/\bAKID[A-Z0-9]*:[^\s),;]+/g) ?? [];
    assert.ok(shown.length > 0, `meshca ${cmd} --help shows an example key: ${option}`);
    for (const k of shown) assert.doesNotThrow(() => parseAccessKey(k), `meshca ${cmd} --help shows ${k}`);
  }
});
