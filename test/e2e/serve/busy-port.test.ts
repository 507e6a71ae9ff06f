import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runMeshca } from '../../helpers/run.js';
import { tempDir } from '../../helpers/tmp.js';

// Something else already listens: serve must refuse before its first start creates any state.
const tmp = tempDir('meshca-serve-busy-');
let busy: Server;
let busyAddr: string;
before(async () => {
  busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  busyAddr = `127.0.0.1:${(busy.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise((resolve) => busy.close(resolve));
  tmp.cleanup();
});

const left = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);

for (const [flag, what, other] of [
  ['--grpc-addr', 'gRPC', '--http-addr'],
  ['--http-addr', 'HTTP', '--grpc-addr'],
] as const) {
  test(`serve with a busy ${flag} exits non-zero naming the address, and creates nothing`, async () => {
    const dir = join(tmp.path, `new-${what}`);
    const r = await runMeshca(['serve', '--dir', dir, flag, busyAddr, other, '127.0.0.1:0']);
    assert.notEqual(r.code, 0, r.stderr);
    assert.ok(r.stderr.includes(`cannot listen for ${what} on ${busyAddr}`), r.stderr);
    assert.match(r.stderr, /EADDRINUSE/);
    assert.equal(r.stdout, '');
    assert.deepEqual(left(dir), [], 'no root, intermediate or database');
  });
}
