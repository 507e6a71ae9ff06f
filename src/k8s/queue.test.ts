import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkQueue } from './queue.js';

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('WorkQueue', () => {
  it('handles a key queued many times once, and again once if it was added while running', async () => {
    const runs: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const q = new WorkQueue(async (k) => {
      runs.push(k);
      if (runs.length === 1) await gate;
    });
    q.add('a');
    q.add('a');
    await tick();
    q.add('a');
    q.add('a');
    assert.deepEqual(runs, ['a'], 'never twice at once');
    release();
    await q.idle();
    assert.deepEqual(runs, ['a', 'a'], 'the adds during the run collapse into one more run');
  });

  it('bounds concurrency across keys', async () => {
    let running = 0;
    let peak = 0;
    const q = new WorkQueue(
      async () => {
        peak = Math.max(peak, ++running);
        await tick(10);
        running--;
      },
      { concurrency: 2 },
    );
    for (const k of ['a', 'b', 'c', 'd', 'e']) q.add(k);
    await q.idle();
    assert.equal(peak, 2);
  });

  it('retries a failing key with backoff, and stops handing out work after stop()', async () => {
    let attempts = 0;
    const errors: number[] = [];
    const q = new WorkQueue(
      async () => {
        if (++attempts < 3) throw new Error('transient');
      },
      { retryMs: 5, onError: (_k, _e, ms) => errors.push(ms) },
    );
    q.add('x');
    await q.idle();
    assert.equal(attempts, 3);
    assert.deepEqual(errors, [5, 10]);
    q.stop();
    q.add('y');
    await tick(20);
    assert.equal(attempts, 3);
  });
});
