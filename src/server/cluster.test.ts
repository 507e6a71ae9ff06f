import assert from 'node:assert/strict';
import { test } from 'node:test';
import { YOUNG_GENERATION_FLAG, workerExecArgv } from './cluster.js';

test('workers get the small young generation unless the operator chose a size', () => {
  assert.deepEqual(workerExecArgv([], ''), [YOUNG_GENERATION_FLAG]);
  assert.deepEqual(workerExecArgv(['--enable-source-maps'], ''), ['--enable-source-maps', YOUNG_GENERATION_FLAG]);
  assert.deepEqual(workerExecArgv(['--max-semi-space-size=8'], ''), ['--max-semi-space-size=8']);
  assert.deepEqual(workerExecArgv([], '--max-old-space-size=512 --max-semi-space-size=16'), []);
});
