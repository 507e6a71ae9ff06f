import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { requestBudget } from './budget.js';
import { FRAME, H2Connection, type H2Handlers } from './connection.js';
import { HpackDecoder, HpackError, encodeHeaders } from './hpack.js';
import { prng } from '../../../../test/helpers/prng.js';
import { PREFACE, frame } from '../../../../test/helpers/h2-raw.js';

/**
 * Seeded fuzzing of the frame parser and the HPACK decoder: valid sequences mutated byte by byte,
 * in lengths, types and flags, fed in random slices. Bad input must become GOAWAY or RST_STREAM
 * (HpackError for the bare decoder), never an exception out of the socket's 'data' handler, and
 * whatever a connection buffered must be released when its socket closes.
 * MESHCA_FUZZ_ITERATIONS and MESHCA_FUZZ_SEED run it longer or elsewhere.
 */

const ITERATIONS = Number(process.env.MESHCA_FUZZ_ITERATIONS ?? 400);
const SEED = Number(process.env.MESHCA_FUZZ_SEED ?? 0x5eed21);

/** A fake TLS socket: what the connection writes is counted and dropped. */
class FakeSocket extends Duplex {
  remoteAddress = '10.0.0.1';
  remotePort = 1;
  written = 0;
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.written += chunk.length;
    cb();
  }
}

const handlers: H2Handlers = {
  onRequest(c, req) {
    c.respond(
      req,
      [
        [':status', '200'],
        ['content-type', 'application/grpc'],
      ],
      Buffer.alloc(req.body.length % 3000, 1),
      [['grpc-status', '0']],
    );
  },
  onTooLarge(c, req) {
    c.respond(req, [
      [':status', '200'],
      ['grpc-status', '8'],
    ]);
  },
  onHeadersTooLarge(c, req) {
    c.respond(req, [[':status', '431']]);
  },
};

/** Frames of a plausible client conversation, as separate buffers so mutations can pick one. */
function validFrames(rnd: () => number): Buffer[] {
  const headers = encodeHeaders([
    [':method', 'POST'],
    [':scheme', 'https'],
    [':path', '/istio.v1.auth.IstioCertificateService/CreateCertificate'],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ['authorization', 'Bearer ' + 'x'.repeat(Math.floor(rnd() * 200))],
  ]);
  const settings = Buffer.from([0, 4, 0, 0, 0xff, 0xff, 0, 5, 0, 0, 0x40, 0]);
  const split = 1 + Math.floor(rnd() * (headers.length - 1));
  const body = Buffer.alloc(5 + Math.floor(rnd() * 2000), 7);
  body[0] = 0;
  body.writeUInt32BE(body.length - 5, 1);
  return [
    PREFACE,
    frame(FRAME.SETTINGS, 0, 0, settings),
    frame(FRAME.WINDOW_UPDATE, 0, 0, Buffer.from([0, 1, 0, 0])),
    frame(FRAME.HEADERS, 4, 1, headers),
    frame(FRAME.DATA, 1, 1, body),
    frame(FRAME.HEADERS, 0, 3, headers.subarray(0, split)),
    frame(FRAME.CONTINUATION, 4, 3, headers.subarray(split)),
    frame(FRAME.DATA, 0x8, 3, Buffer.concat([Buffer.from([3]), body.subarray(0, 10), Buffer.alloc(3)])),
    frame(FRAME.PING, 0, 0, Buffer.alloc(8, 9)),
    frame(FRAME.DATA, 1, 3, body.subarray(10)),
    frame(FRAME.RST_STREAM, 0, 3, Buffer.from([0, 0, 0, 8])),
    frame(FRAME.SETTINGS, 1, 0),
    frame(FRAME.GOAWAY, 0, 0, Buffer.alloc(8)),
  ];
}

function mutate(frames: Buffer[], rnd: () => number): Buffer {
  const pick = () => Math.floor(rnd() * frames.length);
  const n = 1 + Math.floor(rnd() * 4);
  for (let k = 0; k < n; k++) {
    const i = pick();
    const f = Buffer.from(frames[i]);
    const kind = Math.floor(rnd() * 8);
    if (kind === 0 && f.length > 0) f[Math.floor(rnd() * f.length)] = Math.floor(rnd() * 256);
    else if (kind === 1 && f.length >= 9 && i > 0) f.writeUIntBE(Math.floor(rnd() * 20_000), 0, 3);
    else if (kind === 2 && f.length >= 9 && i > 0) f[3] = Math.floor(rnd() * 12);
    else if (kind === 3 && f.length >= 9 && i > 0) f[4] = Math.floor(rnd() * 256);
    else if (kind === 4 && f.length >= 9 && i > 0) f.writeUInt32BE(Math.floor(rnd() * 8), 5);
    else if (kind === 5) frames.splice(i, 0, f);
    else if (kind === 6 && frames.length > 2) frames.splice(i, 1);
    else if (kind === 7) {
      const junk = Buffer.alloc(Math.floor(rnd() * 64));
      for (let j = 0; j < junk.length; j++) junk[j] = Math.floor(rnd() * 256);
      frames.splice(i, 0, frame(Math.floor(rnd() * 11), Math.floor(rnd() * 256), Math.floor(rnd() * 6), junk));
      continue;
    }
    if (kind !== 5 && kind !== 6) frames[i] = f;
  }
  return Buffer.concat(frames);
}

/** Feeds bytes in random slices; an exception out of the 'data' handler fails the run. */
function feed(sock: FakeSocket, bytes: Buffer, rnd: () => number): void {
  for (let at = 0; at < bytes.length;) {
    const n = 1 + Math.floor(rnd() * (rnd() < 0.5 ? 16 : bytes.length));
    sock.emit('data', bytes.subarray(at, at + n));
    at += n;
  }
}

const tick = () => new Promise((r) => setImmediate(r));

test(`fuzz: mutated frame sequences never throw out of the connection and release what they buffer (seed ${SEED}, ${ITERATIONS} iterations)`, async () => {
  const rnd = prng(SEED);
  const heapBefore = process.memoryUsage().heapUsed;
  const budgetBefore = requestBudget.used;
  for (let it = 0; it < ITERATIONS; it++) {
    const sock = new FakeSocket();
    const conn = new H2Connection(sock as unknown as ConstructorParameters<typeof H2Connection>[0], handlers);
    const bytes =
      rnd() < 0.1
        ? Buffer.concat([PREFACE, Buffer.from(Array.from({ length: 200 }, () => Math.floor(rnd() * 256)))])
        : mutate(validFrames(rnd), rnd);
    try {
      feed(sock, bytes, rnd);
      await tick();
    } catch (e) {
      assert.fail(`seed ${SEED}, iteration ${it}: ${(e as Error).stack}\ninput ${bytes.toString('hex')}`);
    }
    sock.destroy();
    await tick();
    assert.equal(conn.bufferedBytes, 0, `seed ${SEED}, iteration ${it}: connection still holds request bytes`);
    assert.equal(conn.openStreams, 0, `seed ${SEED}, iteration ${it}: streams left after close`);
  }
  assert.equal(requestBudget.used, budgetBefore, `seed ${SEED}: the process budget did not return to where it was`);
  const grown = process.memoryUsage().heapUsed - heapBefore;
  assert.ok(grown < 64 * 1024 * 1024, `seed ${SEED}: heap grew by ${grown} bytes`);
});

test(`fuzz: the HPACK decoder throws only HpackError on random and mutated blocks (seed ${SEED})`, () => {
  const rnd = prng(SEED ^ 0x9e3779b9);
  const valid = [
    encodeHeaders([
      [':method', 'POST'],
      [':path', '/a'],
      ['content-type', 'application/grpc'],
    ]),
    // Literal with incremental indexing (0x40), a Huffman-coded value, and a size update.
    Buffer.from(
      '3f e1 1f 40 0a 63 75 73 74 6f 6d 2d 6b 65 79 0d 63 75 73 74 6f 6d 2d 68 65 61 64 65 72 be 82 86 84 41 8c f1 e3 c2 e5 f2 3a 6b a0 ab 90 f4 ff'.replace(
        / /g,
        '',
      ),
      'hex',
    ),
  ];
  for (let it = 0; it < ITERATIONS * 5; it++) {
    const decoder = new HpackDecoder(4096);
    let block: Buffer;
    if (rnd() < 0.3) {
      block = Buffer.alloc(Math.floor(rnd() * 64));
      for (let j = 0; j < block.length; j++) block[j] = Math.floor(rnd() * 256);
    } else {
      block = Buffer.from(valid[Math.floor(rnd() * valid.length)]);
      const n = 1 + Math.floor(rnd() * 3);
      for (let k = 0; k < n && block.length > 0; k++) block[Math.floor(rnd() * block.length)] = Math.floor(rnd() * 256);
      if (rnd() < 0.3) block = block.subarray(0, Math.floor(rnd() * block.length));
    }
    for (let round = 0; round < 2; round++) {
      try {
        const { headers, size } = decoder.decode(block, 0, block.length, 1024);
        assert.ok(size >= 0 && headers.length <= 1024 / 32 + 1, `seed ${SEED}, iteration ${it}: list accounting`);
      } catch (e) {
        if (!(e instanceof HpackError)) assert.fail(`seed ${SEED}, iteration ${it}: ${(e as Error).stack}\nblock ${block.toString('hex')}`);
        break;
      }
    }
  }
});
