import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { DEFAULT_LIMITS, FRAME, H2Connection, H2_ERROR, type ConnectionLimits, type H2Handlers } from './connection.js';
import { encodeHeaders } from './hpack.js';
import { requestBudget } from './budget.js';
import { PREFACE, RawPeer, eventually, frame, settings } from '../../../../test/helpers/h2-raw.js';

/** An echo application: answers with the request's regular headers as JSON and the body's SHA-256, or a body of ?size octets. */
const echo: H2Handlers = {
  onRequest(c, req) {
    const path = req.headers.find(([n]) => n === ':path')?.[1] ?? '';
    const size = Number(new URL(path, 'http://x').searchParams.get('size') ?? -1);
    const hdr = new URL(path, 'http://x').searchParams.get('header');
    const regular = req.headers.filter(([n]) => n[0] !== ':');
    const body =
      size >= 0
        ? Buffer.alloc(size, 0x61)
        : Buffer.from(JSON.stringify({ headers: regular, sha: createHash('sha256').update(req.body).digest('hex'), len: req.body.length }));
    const headers: Array<[string, string]> = [
      [':status', '200'],
      ['content-type', 'application/json'],
    ];
    if (hdr) headers.push(['x-big', 'h'.repeat(Number(hdr))]);
    c.respond(req, headers, body, [['x-trailer', 'done']]);
  },
  onTooLarge(c, req) {
    c.respond(req, [[':status', '413']]);
  },
  onHeadersTooLarge(c, req) {
    c.respond(req, [[':status', '431']]);
  },
};

async function serve(
  limits: ConnectionLimits = DEFAULT_LIMITS,
  handlers: H2Handlers = echo,
): Promise<{ port: number; server: Server; conns: H2Connection[]; close(): Promise<void> }> {
  const conns: H2Connection[] = [];
  const server = createServer((sock) => conns.push(new H2Connection(sock, handlers, limits)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    conns,
    close: () =>
      new Promise<void>((r) => {
        for (const c of conns) c.destroy();
        server.close(() => r());
      }),
  };
}

function request(
  s: ClientHttp2Session,
  path: string,
  headers: Record<string, string | string[]>,
  body: Buffer,
): Promise<{ status: number; headers: Record<string, unknown>; trailers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = s.request({ ':method': 'POST', ':path': path, ...headers });
    const out = { status: 0, headers: {} as Record<string, unknown>, trailers: {} as Record<string, unknown>, body: Buffer.alloc(0) };
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      out.status = Number(h[':status']);
      out.headers = h;
    });
    req.on('trailers', (t) => (out.trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('close', () => {
      out.body = Buffer.concat(chunks);
      resolve(out);
    });
    req.end(body);
  });
}

test('node:http2 (nghttp2) client: 300 requests with random headers through the dynamic table, Huffman, and bodies up to 40 KB', async () => {
  const srv = await serve();
  const s = h2connect(`http://127.0.0.1:${srv.port}`);
  try {
    const names = Array.from({ length: 12 }, (_, i) => `x-h${i}-${randomBytes(3).toString('hex')}`);
    const values = Array.from({ length: 30 }, () => randomBytes(1 + Math.floor(Math.random() * 60)).toString('base64'));
    const jobs = [];
    for (let i = 0; i < 300; i++) {
      const headers: Record<string, string> = {};
      for (let k = 0; k < 1 + (i % 8); k++)
        headers[names[(i * 7 + k) % names.length]] = values[(i * 13 + k * 5) % values.length] + (i % 5 === 0 ? `-${i}` : '');
      const body = randomBytes((i * 137) % 40_000);
      jobs.push(
        request(s, '/echo', headers, body).then((r) => {
          assert.equal(r.status, 200);
          const got = JSON.parse(r.body.toString()) as { headers: Array<[string, string]>; sha: string; len: number };
          assert.deepEqual(Object.fromEntries(got.headers), headers);
          assert.equal(got.sha, createHash('sha256').update(body).digest('hex'));
          assert.equal(r.trailers['x-trailer'], 'done');
        }),
      );
    }
    await Promise.all(jobs);
  } finally {
    s.close();
    await srv.close();
  }
});

test('flow control: a 3 MB request body (past the 1 MiB stream window) and a 600 KB answer to a client with a 1,000-octet window', async () => {
  const srv = await serve();
  const s = h2connect(`http://127.0.0.1:${srv.port}`, { settings: { initialWindowSize: 1000 } });
  try {
    const body = randomBytes(3 << 20);
    const r = await request(s, '/echo', {}, body);
    assert.equal(JSON.parse(r.body.toString()).sha, createHash('sha256').update(body).digest('hex'));
    const big = await Promise.all([request(s, '/x?size=600000', {}, Buffer.alloc(0)), request(s, '/x?size=70000', {}, Buffer.alloc(0))]);
    assert.equal(big[0].body.length, 600_000);
    assert.equal(big[1].body.length, 70_000);
    assert.equal(big[0].trailers['x-trailer'], 'done');
  } finally {
    s.close();
    await srv.close();
  }
});

test('a 40 KB response header goes out in HEADERS + CONTINUATION frames', async () => {
  const srv = await serve();
  const s = h2connect(`http://127.0.0.1:${srv.port}`, { maxHeaderListPairs: 100, settings: { maxHeaderListSize: 100_000 } });
  try {
    const r = await request(s, '/x?size=3&header=40000', {}, Buffer.alloc(0));
    assert.equal(r.status, 200);
    assert.equal(String(r.headers['x-big']).length, 40_000);
  } finally {
    s.close();
    await srv.close();
  }
});

test('limits: body too large, header list too large, too many streams at once', async () => {
  const srv = await serve(
    { ...DEFAULT_LIMITS, maxBodyBytes: 1000, maxHeaderListSize: 2000, maxConcurrentStreams: 2 },
    {
      ...echo,
      onRequest(c, req) {
        // Answer later, so that streams stay open.
        setTimeout(() => echo.onRequest(c, req), 100);
      },
    },
  );
  const s = h2connect(`http://127.0.0.1:${srv.port}`);
  try {
    await new Promise((r) => s.once('remoteSettings', r));
    assert.equal((await request(s, '/echo', {}, Buffer.alloc(1001))).status, 413);
    assert.equal((await request(s, '/echo', { 'x-big': 'v'.repeat(3000) }, Buffer.alloc(1))).status, 431);
    const three = await Promise.allSettled([1, 2, 3].map(() => request(s, '/echo', {}, Buffer.alloc(10))));
    assert.deepEqual(
      three.map((r) => r.status),
      ['fulfilled', 'fulfilled', 'fulfilled'],
    );
    // node:http2 honours our MAX_CONCURRENT_STREAMS by queueing the third request; all succeed.
    assert.deepEqual(
      three.map((r) => (r as PromiseFulfilledResult<{ status: number }>).value.status),
      [200, 200, 200],
    );
  } finally {
    s.close();
    await srv.close();
  }
});

// ---- raw frames ---------------------------------------------------------------------------

interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
}

/** Sends bytes on a fresh connection and collects the server's frames until it closes or `ms` pass. */
async function exchange(port: number, send: Buffer[], ms = 400): Promise<Frame[]> {
  const sock: Socket = netConnect(port, '127.0.0.1');
  const frames: Frame[] = [];
  let buf = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      frames.push({ type: buf[3], flags: buf[4], id: buf.readUInt32BE(5) & 0x7fffffff, payload: buf.subarray(9, 9 + len) });
      buf = buf.subarray(9 + len);
    }
  });
  sock.on('error', () => {});
  await new Promise((r) => sock.once('connect', r));
  for (const b of send) sock.write(b);
  await new Promise<void>((r) => {
    const t = setTimeout(r, ms);
    sock.once('close', () => {
      clearTimeout(t);
      r();
    });
  });
  sock.destroy();
  return frames;
}

const goaway = (frames: Frame[]) => {
  const g = frames.find((f) => f.type === FRAME.GOAWAY);
  return g ? { last: g.payload.readUInt32BE(0), code: g.payload.readUInt32BE(4), debug: g.payload.subarray(8).toString() } : undefined;
};

const SETTINGS = frame(FRAME.SETTINGS, 0, 0);
const GET = (extra: Array<[string, string]> = []) =>
  encodeHeaders([[':method', 'POST'], [':scheme', 'http'], [':path', '/echo'], ...extra]);

test('raw protocol errors end the connection with the RFC 9113 error code', async () => {
  const srv = await serve();
  try {
    const cases: Array<[string, Buffer[], number]> = [
      ['bad preface', [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], H2_ERROR.PROTOCOL_ERROR],
      ['first frame not SETTINGS', [PREFACE, frame(FRAME.PING, 0, 0, Buffer.alloc(8))], H2_ERROR.PROTOCOL_ERROR],
      ['even stream id', [PREFACE, SETTINGS, frame(FRAME.HEADERS, 5, 2, GET())], H2_ERROR.PROTOCOL_ERROR],
      ['DATA on stream 0', [PREFACE, SETTINGS, frame(FRAME.DATA, 1, 0, Buffer.alloc(3))], H2_ERROR.PROTOCOL_ERROR],
      ['DATA on an idle stream', [PREFACE, SETTINGS, frame(FRAME.DATA, 1, 7, Buffer.alloc(3))], H2_ERROR.PROTOCOL_ERROR],
      ['frame over 16,384 octets', [PREFACE, SETTINGS, frame(FRAME.DATA, 0, 1, Buffer.alloc(16_385))], H2_ERROR.FRAME_SIZE_ERROR],
      ['SETTINGS of 5 octets', [PREFACE, frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(5))], H2_ERROR.FRAME_SIZE_ERROR],
      [
        'header block interrupted',
        [PREFACE, SETTINGS, frame(FRAME.HEADERS, 0, 1, GET()), frame(FRAME.PING, 0, 0, Buffer.alloc(8))],
        H2_ERROR.PROTOCOL_ERROR,
      ],
      ['HPACK index 0', [PREFACE, SETTINGS, frame(FRAME.HEADERS, 5, 1, Buffer.from([0x80]))], H2_ERROR.COMPRESSION_ERROR],
      ['PUSH_PROMISE from a client', [PREFACE, SETTINGS, frame(FRAME.PUSH_PROMISE, 4, 1, Buffer.alloc(4))], H2_ERROR.PROTOCOL_ERROR],
      [
        'window overflow',
        [PREFACE, SETTINGS, frame(FRAME.WINDOW_UPDATE, 0, 0, Buffer.from([0x7f, 0xff, 0xff, 0xff]))],
        H2_ERROR.FLOW_CONTROL_ERROR,
      ],
      [
        'INITIAL_WINDOW_SIZE too large',
        [PREFACE, frame(FRAME.SETTINGS, 0, 0, Buffer.from([0, 4, 0x80, 0, 0, 0]))],
        H2_ERROR.FLOW_CONTROL_ERROR,
      ],
      [
        'padding longer than the frame',
        [PREFACE, SETTINGS, frame(FRAME.HEADERS, 0x8 | 5, 1, Buffer.from([9, 0x82]))],
        H2_ERROR.PROTOCOL_ERROR,
      ],
    ];
    for (const [name, send, code] of cases) {
      const g = goaway(await exchange(srv.port, send));
      assert.ok(g, `${name}: no GOAWAY`);
      assert.equal(g.code, code, `${name}: ${g.debug}`);
    }
  } finally {
    await srv.close();
  }
});

test('raw: SETTINGS are acknowledged, PING is echoed, a stream reset before its end is forgotten', async () => {
  const seen: number[] = [];
  const srv = await serve(DEFAULT_LIMITS, { ...echo, onRequest: (c, req) => (seen.push(req.id), echo.onRequest(c, req)) });
  try {
    const ping = Buffer.from('12345678');
    const frames = await exchange(srv.port, [
      PREFACE,
      SETTINGS,
      frame(FRAME.PING, 0, 0, ping),
      frame(FRAME.HEADERS, 4, 1, GET()),
      frame(FRAME.RST_STREAM, 0, 1, Buffer.from([0, 0, 0, 8])),
      frame(FRAME.HEADERS, 5, 3, GET()),
    ]);
    const ours = frames.find((f) => f.type === FRAME.SETTINGS && !(f.flags & 1));
    assert.ok(ours, 'server SETTINGS');
    assert.ok(
      frames.some((f) => f.type === FRAME.SETTINGS && f.flags & 1),
      'SETTINGS ACK',
    );
    assert.deepEqual(frames.find((f) => f.type === FRAME.PING)?.payload, ping);
    assert.deepEqual(seen, [3], 'the reset stream never reached the application');
    assert.ok(
      frames.some((f) => f.type === FRAME.DATA && f.id === 3 && f.flags & 1) ||
        frames.some((f) => f.type === FRAME.HEADERS && f.id === 3 && f.flags & 1),
    );
    assert.equal(goaway(frames), undefined);
  } finally {
    await srv.close();
  }
});

test('raw: a reset flood gets GOAWAY ENHANCE_YOUR_CALM', async () => {
  const srv = await serve({ ...DEFAULT_LIMITS, maxResetsPerSecond: 50 });
  try {
    const send = [PREFACE, SETTINGS];
    for (let id = 1; id < 2 * 60; id += 2)
      send.push(frame(FRAME.HEADERS, 4, id, GET()), frame(FRAME.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])));
    assert.equal(goaway(await exchange(srv.port, [Buffer.concat(send)]))?.code, H2_ERROR.ENHANCE_YOUR_CALM);
  } finally {
    await srv.close();
  }
});

test('graceful shutdown: GOAWAY names the last stream, the open stream is still answered, new streams are refused', async () => {
  const srv = await serve();
  try {
    const sock = netConnect(srv.port, '127.0.0.1');
    const frames: Frame[] = [];
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
        const len = buf.readUIntBE(0, 3);
        frames.push({ type: buf[3], flags: buf[4], id: buf.readUInt32BE(5), payload: buf.subarray(9, 9 + len) });
        buf = buf.subarray(9 + len);
      }
    });
    const closed = new Promise((r) => sock.once('close', r));
    await new Promise((r) => sock.once('connect', r));
    sock.write(Buffer.concat([PREFACE, SETTINGS, frame(FRAME.HEADERS, 4, 1, GET())]));
    await new Promise((r) => setTimeout(r, 100));
    srv.conns[0].shutdown();
    await new Promise((r) => setTimeout(r, 50));
    sock.write(Buffer.concat([frame(FRAME.HEADERS, 5, 3, GET()), frame(FRAME.DATA, 1, 1, Buffer.from('abc'))]));
    await closed;
    const g = goaway(frames);
    assert.deepEqual(g && { last: g.last, code: g.code }, { last: 1, code: H2_ERROR.NO_ERROR });
    assert.ok(frames.some((f) => f.type === FRAME.RST_STREAM && f.id === 3 && f.payload.readUInt32BE(0) === H2_ERROR.REFUSED_STREAM));
    const data = frames.filter((f) => f.type === FRAME.DATA && f.id === 1);
    assert.equal(JSON.parse(Buffer.concat(data.map((f) => f.payload)).toString()).len, 3);
  } finally {
    await srv.close();
  }
});

// ---- floods, the process budget, deadlines --------------------------------

const SETTING_INITIAL_WINDOW_SIZE = 4;

test('an empty-CONTINUATION flood gets GOAWAY ENHANCE_YOUR_CALM after a bounded number of fragments', async () => {
  const srv = await serve();
  try {
    const p = await RawPeer.open(srv.port);
    const flood = Buffer.concat(Array.from({ length: 5000 }, () => frame(FRAME.CONTINUATION, 0, 1)));
    p.send(PREFACE, SETTINGS, frame(FRAME.HEADERS, 0, 1, GET()), flood);
    await p.until((x) => x.goaway(), 3000);
    assert.equal(p.goaway()?.code, H2_ERROR.ENHANCE_YOUR_CALM, p.goaway()?.debug);
    assert.equal(srv.conns[0].bufferedBytes, 0, 'the header block was released');
    p.close();
  } finally {
    await srv.close();
  }
});

test('the process budget sheds the oldest unauthenticated stream first, across connections', async () => {
  const seen: number[] = [];
  const srv = await serve(DEFAULT_LIMITS, { ...echo, onRequest: (c, req) => (seen.push(req.id), echo.onRequest(c, req)) });
  const limit = requestBudget.limit;
  try {
    const body = Buffer.alloc(16_000);
    // The oldest stream is on a connection with a verified client certificate.
    const auth = await RawPeer.open(srv.port);
    auth.send(PREFACE, SETTINGS, frame(FRAME.HEADERS, 4, 1, GET()), frame(FRAME.DATA, 0, 1, body));
    assert.ok(await eventually(() => srv.conns[0]?.bufferedBytes > 16_000));
    srv.conns[0].peerCertDer = Buffer.from('verified');
    const anon = await RawPeer.open(srv.port);
    anon.send(PREFACE, SETTINGS, frame(FRAME.HEADERS, 4, 1, GET()), frame(FRAME.DATA, 0, 1, body));
    assert.ok(await eventually(() => srv.conns[1]?.bufferedBytes > 16_000));
    requestBudget.limit = requestBudget.used + 20_000;
    // Two more streams on the anonymous connection pass the budget by about 12 KB.
    anon.send(
      frame(FRAME.HEADERS, 4, 3, GET()),
      frame(FRAME.DATA, 0, 3, body),
      frame(FRAME.HEADERS, 4, 5, GET()),
      frame(FRAME.DATA, 0, 5, body),
    );
    await anon.until((x) => x.reset(1) !== undefined, 3000);
    assert.equal(anon.reset(1), H2_ERROR.REFUSED_STREAM, 'the oldest unauthenticated stream was shed');
    assert.equal(anon.reset(3), undefined);
    assert.equal(anon.reset(5), undefined);
    assert.ok(requestBudget.used <= requestBudget.limit);
    // The older authenticated stream survived and completes.
    auth.send(frame(FRAME.DATA, 1, 1, Buffer.from('end')));
    await auth.until((x) => x.frames.some((f) => f.type === FRAME.HEADERS && f.id === 1 && f.flags & 1), 3000);
    assert.equal(auth.reset(1), undefined);
    assert.deepEqual(seen, [1]);
    auth.close();
    anon.close();
    assert.ok(await eventually(() => requestBudget.used === 0), 'the budget returns to zero when the sockets close');
  } finally {
    requestBudget.limit = limit;
    await srv.close();
  }
});

test('deadlines: unfinished request, unfinished header block, missing SETTINGS, stalled answer, idle connection', async () => {
  requestBudget.setSweepInterval(20);
  const limits: ConnectionLimits = {
    ...DEFAULT_LIMITS,
    requestTimeoutMs: 100,
    headerBlockTimeoutMs: 100,
    handshakeTimeoutMs: 100,
    flowControlTimeoutMs: 100,
    idleTimeoutMs: 200,
  };
  const srv = await serve(limits);
  try {
    const body = await RawPeer.open(srv.port);
    body.send(PREFACE, SETTINGS, frame(FRAME.HEADERS, 4, 1, GET()), frame(FRAME.DATA, 0, 1, Buffer.alloc(100)));
    await body.until((x) => x.reset(1) !== undefined, 3000);
    assert.equal(body.reset(1), H2_ERROR.CANCEL, 'unfinished request reset');

    const block = await RawPeer.open(srv.port);
    block.send(PREFACE, SETTINGS, frame(FRAME.HEADERS, 0, 1, GET()));
    await block.until((x) => x.goaway(), 3000);
    assert.equal(block.goaway()?.code, H2_ERROR.ENHANCE_YOUR_CALM, 'unfinished header block');

    const silent = await RawPeer.open(srv.port);
    silent.send(PREFACE);
    await silent.until((x) => x.goaway(), 3000);
    assert.equal(silent.goaway()?.code, H2_ERROR.ENHANCE_YOUR_CALM, 'no SETTINGS');

    // A peer that advertises a zero window and never opens it.
    const stalled = await RawPeer.open(srv.port);
    stalled.send(
      PREFACE,
      frame(FRAME.SETTINGS, 0, 0, settings([[SETTING_INITIAL_WINDOW_SIZE, 0]])),
      frame(
        FRAME.HEADERS,
        5,
        1,
        encodeHeaders([
          [':method', 'POST'],
          [':scheme', 'http'],
          [':path', '/x?size=5000'],
        ]),
      ),
    );
    await stalled.until((x) => x.reset(1) !== undefined, 3000);
    assert.equal(stalled.reset(1), H2_ERROR.CANCEL, 'stalled answer reset');
    const stalledConn = srv.conns[3];
    assert.equal(stalledConn.pendingOutputBytes, 0);

    // body's connection has no streams left: it is shut down as idle.
    await body.until((x) => x.goaway(), 3000);
    assert.equal(body.goaway()?.code, H2_ERROR.NO_ERROR, 'idle connection');
    for (const p of [body, block, silent, stalled]) p.close();
  } finally {
    requestBudget.setSweepInterval(1000);
    await srv.close();
  }
});

test('answers stalled on a zero window are bounded per connection', async () => {
  const srv = await serve({ ...DEFAULT_LIMITS, maxPendingOutput: 10_000 });
  try {
    const p = await RawPeer.open(srv.port);
    const send = [PREFACE, frame(FRAME.SETTINGS, 0, 0, settings([[SETTING_INITIAL_WINDOW_SIZE, 0]]))];
    for (let id = 1; id <= 9; id += 2)
      send.push(
        frame(
          FRAME.HEADERS,
          5,
          id,
          encodeHeaders([
            [':method', 'POST'],
            [':scheme', 'http'],
            [':path', '/x?size=3000'],
          ]),
        ),
      );
    p.send(...send);
    await p.until((x) => x.goaway(), 3000);
    assert.equal(p.goaway()?.code, H2_ERROR.ENHANCE_YOUR_CALM);
    p.close();
  } finally {
    await srv.close();
  }
});

test('SETTINGS with more than maxSettingsEntries entries gets GOAWAY ENHANCE_YOUR_CALM', async () => {
  const srv = await serve();
  try {
    const ok = Array.from({ length: 32 }, () => [SETTING_INITIAL_WINDOW_SIZE, 1000] as [number, number]);
    assert.equal(
      goaway(await exchange(srv.port, [PREFACE, frame(FRAME.SETTINGS, 0, 0, settings(ok))], 200)),
      undefined,
      '32 entries are fine',
    );
    const many = Array.from({ length: 2000 }, (_, i) => [SETTING_INITIAL_WINDOW_SIZE, i] as [number, number]);
    assert.equal(
      goaway(await exchange(srv.port, [PREFACE, SETTINGS, frame(FRAME.SETTINGS, 0, 0, settings(many))]))?.code,
      H2_ERROR.ENHANCE_YOUR_CALM,
    );
  } finally {
    await srv.close();
  }
});

test('SETTINGS and PING floods get GOAWAY ENHANCE_YOUR_CALM', async () => {
  const srv = await serve();
  try {
    const settingsFlood = Buffer.concat(Array.from({ length: 150 }, () => SETTINGS));
    assert.equal(goaway(await exchange(srv.port, [PREFACE, settingsFlood]))?.code, H2_ERROR.ENHANCE_YOUR_CALM, 'SETTINGS flood');
    const pingFlood = Buffer.concat(Array.from({ length: 1100 }, () => frame(FRAME.PING, 0, 0, Buffer.alloc(8))));
    assert.equal(goaway(await exchange(srv.port, [PREFACE, SETTINGS, pingFlood]))?.code, H2_ERROR.ENHANCE_YOUR_CALM, 'PING flood');
  } finally {
    await srv.close();
  }
});

test('INITIAL_WINDOW_SIZE: one SETTINGS frame with several entries applies the last one to every open stream', async () => {
  const srv = await serve();
  try {
    const p = await RawPeer.open(srv.port);
    const ask = (id: number) =>
      frame(
        FRAME.HEADERS,
        5,
        id,
        encodeHeaders([
          [':method', 'POST'],
          [':scheme', 'http'],
          [':path', '/x?size=200'],
        ]),
      );
    p.send(PREFACE, frame(FRAME.SETTINGS, 0, 0, settings([[SETTING_INITIAL_WINDOW_SIZE, 0]])), ask(1), ask(3));
    await p.until((x) => x.frames.filter((f) => f.type === FRAME.HEADERS).length >= 2, 3000);
    await new Promise((r) => setTimeout(r, 50));
    const dataOf = (id: number) => p.frames.filter((f) => f.type === FRAME.DATA && f.id === id).reduce((n, f) => n + f.payload.length, 0);
    assert.equal(dataOf(1) + dataOf(3), 0, 'no window, no DATA');
    // Window 0 -> 70000 -> 10 -> 30: each stream may send 30 octets.
    p.send(
      frame(
        FRAME.SETTINGS,
        0,
        0,
        settings([
          [SETTING_INITIAL_WINDOW_SIZE, 70_000],
          [SETTING_INITIAL_WINDOW_SIZE, 10],
          [SETTING_INITIAL_WINDOW_SIZE, 30],
        ]),
      ),
    );
    await p.until(() => dataOf(1) + dataOf(3) >= 60, 3000);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual([dataOf(1), dataOf(3)], [30, 30]);
    // Back to 0 then 200: each stream has 200 - 30 left; the answers complete.
    p.send(
      frame(
        FRAME.SETTINGS,
        0,
        0,
        settings([
          [SETTING_INITIAL_WINDOW_SIZE, 0],
          [SETTING_INITIAL_WINDOW_SIZE, 200],
        ]),
      ),
    );
    await p.until(() => dataOf(1) + dataOf(3) >= 400, 3000);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual([dataOf(1), dataOf(3)], [200, 200]);
    assert.equal(srv.conns[0].pendingOutputBytes, 0);
    assert.equal(p.goaway(), undefined);
    p.close();
  } finally {
    await srv.close();
  }
});
