import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generatingKey } from '../util/progress.js';
import { logProgress, stderrProgress } from './progress.js';

const DONE = /^meshca: step: done in \d+\.\d s\n$/;

describe('progress reporter', () => {
  it('says a step before running it and after, with its duration; failures say so and rethrow', async () => {
    const lines: string[] = [];
    const p = stderrProgress((l) => lines.push(l));
    assert.equal(
      p('step', () => {
        assert.deepEqual(lines, ['meshca: step ...\n'], 'announced before the work starts');
        return 7;
      }),
      7,
    );
    assert.match(lines[1], DONE);
    assert.equal(await p('step', () => Promise.resolve('v')), 'v');
    assert.match(lines[3], DONE);
    await assert.rejects(
      p('step', () => Promise.reject(new Error('boom'))),
      /boom/,
    );
    assert.match(lines[5], /^meshca: step: failed in \d+\.\d s\n$/);
    assert.throws(
      () =>
        p('step', () => {
          throw new Error('sync boom');
        }),
      /sync boom/,
    );
    assert.match(lines[7], /: failed in /);
  });

  it('with announceAfterMs, says nothing of a wait that ends first, and reports one that outlasts it', async () => {
    const lines: string[] = [];
    const p = stderrProgress((l) => lines.push(l));
    await p('quick', () => Promise.resolve(), { announceAfterMs: 1000 });
    assert.deepEqual(lines, []);
    let release!: () => void;
    const waiting = p('slow wait', () => new Promise<void>((r) => (release = r)), { announceAfterMs: 5 });
    const deadline = Date.now() + 10_000;
    while (lines.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(lines, ['meshca: slow wait ...\n']);
    release();
    await waiting;
    assert.match(lines[1], /^meshca: slow wait: done in \d+\.\d s\n$/);
  });

  it('logs through a logger for servers', () => {
    const records: [object, string][] = [];
    logProgress({ info: (o, m) => records.push([o, m]) })('step', () => 1);
    assert.deepEqual(records[0], [{}, 'step ...']);
    assert.equal(records[1][1], 'step: done');
    assert.equal(typeof (records[1][0] as { seconds: unknown }).seconds, 'number');
  });

  it('reports key generations of RSA-3072 and RSA-4096 only', () => {
    const said: string[] = [];
    const p = stderrProgress((l) => said.push(l));
    for (const alg of ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const) generatingKey(p, alg, 'x', () => 0);
    assert.deepEqual(
      said.filter((l) => l.endsWith('...\n')),
      ['meshca: generating RSA-3072 key for x ...\n', 'meshca: generating RSA-4096 key for x ...\n'],
    );
    assert.equal(
      generatingKey(undefined, 'rsa-4096', 'x', () => 5),
      5,
      'no reporter: just runs',
    );
  });
});
