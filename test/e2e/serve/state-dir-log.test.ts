import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { tempDir } from '../../helpers/tmp.js';
import { spawnServe } from './helpers.js';

const tmp = tempDir();
after(() => tmp.cleanup());

test('serve says it created the state directory first, before the root it then creates and its listeners', async () => {
  const dir = join(tmp.path, 'state');
  const s = spawnServe([
    '--dir',
    dir,
    '--grpc-addr',
    '127.0.0.1:0',
    '--http-addr',
    '127.0.0.1:0',
    '--log-level',
    'info',
    '--log-format',
    'json',
  ]);
  assert.equal((await s.ready).createdRoot, true);
  assert.equal(await s.stop(), 0, s.stderr());
  const messages = s
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { msg: string }).msg);
  const at = (msg: string) => {
    const i = messages.indexOf(msg);
    assert.ok(i >= 0, `no "${msg}" in:\n${messages.join('\n')}`);
    return i;
  };
  const created = at(`created state directory ${dir}`);
  assert.equal(messages.filter((m) => m.startsWith('created state directory')).length, 1, messages.join('\n'));
  assert.ok(created < at('created a new root'), messages.join('\n'));
  assert.ok(created < at('meshca serving'), messages.join('\n'));
});
