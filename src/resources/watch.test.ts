import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CACERTS, FileSecretSink } from './file-secrets.js';
import { OWNER_ANNOTATION } from './secrets.js';
import { watchSecret } from './watch.js';

const dir = mkdtempSync(join(tmpdir(), 'meshca-watch-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('watchSecret', () => {
  it('reports each completed write of a cluster bundle from the outside, once', async () => {
    const writer = new FileSecretSink(dir);
    const reader = new FileSecretSink(dir);
    const ref = { cluster: 'east', ...CACERTS };
    const seen: number[] = [];
    const stop = watchSecret(reader, ref, (v) => seen.push(v), { intervalMs: 20 });
    const put = (s: string) =>
      writer.put(ref, { data: { 'ca-cert.pem': Buffer.from(s) }, annotations: { [OWNER_ANNOTATION]: 'p' } }, { owner: 'p' });
    // Stat polling on a busy machine may be late; wait for each event rather than a fixed time.
    const until = async (n: number) => {
      for (const end = Date.now() + 10_000; seen.length < n && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
    };
    await put('one');
    await until(1);
    await put('one'); // unchanged: no write, no event
    await put('two');
    await until(2);
    await new Promise((r) => setTimeout(r, 100)); // room for a wrong extra event
    stop();
    assert.deepEqual(seen, [1, 2]);
    assert.equal((await reader.get(ref))?.data['ca-cert.pem'].toString(), 'two');
  });
});
