import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import {
  ConnectionBalancer,
  SERVE_NODE_FLAGS,
  WORKER_GC_FLAG,
  WORKER_OLD_SPACE_FLAG,
  WORKER_POOL_FLAG,
  WORKER_PRETENURING_FLAG,
  YOUNG_GENERATION_FLAG,
  workerExecArgv,
} from './cluster.js';

test('workers get the small young generation, single-threaded GC, old-generation room, one platform thread and no pretenuring unless the operator chose otherwise', () => {
  const P = WORKER_PRETENURING_FLAG;
  const all = [YOUNG_GENERATION_FLAG, WORKER_GC_FLAG, WORKER_OLD_SPACE_FLAG, WORKER_POOL_FLAG, P];
  assert.deepEqual(workerExecArgv([], ''), all);
  assert.deepEqual(workerExecArgv(['--enable-source-maps'], ''), ['--enable-source-maps', ...all]);
  assert.deepEqual(workerExecArgv(['--max-semi-space-size=8'], ''), [
    '--max-semi-space-size=8',
    WORKER_GC_FLAG,
    WORKER_OLD_SPACE_FLAG,
    WORKER_POOL_FLAG,
    P,
  ]);
  assert.deepEqual(workerExecArgv([], '--max-old-space-size=512 --max-semi-space-size=16'), [WORKER_GC_FLAG, WORKER_POOL_FLAG, P]);
  assert.deepEqual(workerExecArgv(['--no-single-threaded-gc'], ''), [
    '--no-single-threaded-gc',
    YOUNG_GENERATION_FLAG,
    WORKER_OLD_SPACE_FLAG,
    WORKER_POOL_FLAG,
    P,
  ]);
  assert.deepEqual(workerExecArgv(['--initial-heap-size=32'], '--single-threaded --max-semi-space-size=4'), [
    '--initial-heap-size=32',
    WORKER_POOL_FLAG,
    P,
  ]);
  // npm start passes the pool size to the primary; the workers inherit it, not a second copy.
  assert.deepEqual(workerExecArgv(['--max-semi-space-size=2', '--v8-pool-size=1'], ''), [
    '--max-semi-space-size=2',
    '--v8-pool-size=1',
    WORKER_GC_FLAG,
    WORKER_OLD_SPACE_FLAG,
    P,
  ]);
  assert.deepEqual(workerExecArgv([], '--v8-pool-size=4'), [YOUNG_GENERATION_FLAG, WORKER_GC_FLAG, WORKER_OLD_SPACE_FLAG, P]);
  // Pretenuring asked for, either way, on the command line or in NODE_OPTIONS: the operator's choice stands.
  assert.deepEqual(workerExecArgv(['--allocation-site-pretenuring'], ''), [
    '--allocation-site-pretenuring',
    YOUNG_GENERATION_FLAG,
    WORKER_GC_FLAG,
    WORKER_OLD_SPACE_FLAG,
    WORKER_POOL_FLAG,
  ]);
  assert.deepEqual(workerExecArgv([], '--no-allocation-site-pretenuring'), [
    YOUNG_GENERATION_FLAG,
    WORKER_GC_FLAG,
    WORKER_OLD_SPACE_FLAG,
    WORKER_POOL_FLAG,
  ]);
});

test('npm start and the container image start serve with the node flags the benchmarks use', () => {
  const root = new URL('../../../', import.meta.url);
  const start = (JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { scripts: { start: string } }).scripts.start;
  assert.equal(start, `node ${SERVE_NODE_FLAGS.join(' ')} bin/meshca.js serve`);
  const entry = readFileSync(new URL('deploy/Dockerfile', root), 'utf8').match(/^ENTRYPOINT (.*)$/m)?.[1];
  assert.equal(entry, JSON.stringify(['node', ...SERVE_NODE_FLAGS, '/app/bin/meshca.js']).replace(/","/g, '", "'));
});

test('the connection balancer gives each new connection to the worker with the fewest open ones, ties in turn', () => {
  const b = new ConnectionBalancer<string>();
  assert.equal(b.assign(), undefined, 'no worker yet');
  b.add('a');
  b.add('b');
  // A burst of eight: four each, alternating.
  const burst = Array.from({ length: 8 }, () => b.assign());
  assert.deepEqual(burst, ['a', 'b', 'a', 'b', 'a', 'b', 'a', 'b']);
  assert.deepEqual(b.entries(), [
    ['a', 4],
    ['b', 4],
  ]);
  // Three of a's close: the next three go to a.
  b.closed('a');
  b.closed('a');
  b.closed('a');
  assert.deepEqual([b.assign(), b.assign(), b.assign()], ['a', 'a', 'a']);
  // A replacement worker starts empty and takes new connections until it catches up.
  b.remove('b');
  b.add('c');
  assert.deepEqual([b.assign(), b.assign()], ['c', 'c']);
  assert.deepEqual(b.entries(), [
    ['a', 4],
    ['c', 2],
  ]);
  // Closes never go below zero, and closes for a removed worker are ignored.
  b.closed('b');
  for (let i = 0; i < 6; i++) b.closed('c');
  assert.deepEqual(b.entries(), [
    ['a', 4],
    ['c', 0],
  ]);
  b.add('a');
  assert.deepEqual(
    b.entries(),
    [
      ['a', 4],
      ['c', 0],
    ],
    'adding a known worker keeps its count',
  );
});
