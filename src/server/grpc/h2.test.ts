import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PREFACE, RawPeer, T, eventually, frame } from '../../../test/helpers/h2-raw.js';
import { requestBudget } from './http2/budget.js';
import { DEFAULT_LIMITS, type ConnectionLimits } from './http2/connection.js';
import { encodeHeaders } from './http2/hpack.js';
import { createH2GrpcServer, fieldError, nodeH2ServerOptions, type H2Engine } from './h2.js';

const PATH = '/svc/M';
const PROTOCOL_ERROR = 1;

async function start(engine: H2Engine, limits?: Partial<ConnectionLimits>) {
  const calls: Array<Record<string, unknown>> = [];
  const srv = createH2GrpcServer({
    engine,
    maxMessageBytes: 1 << 20,
    limits,
    routes: {
      [PATH]: (call) => {
        calls.push(call.headers);
        return Buffer.from('ok');
      },
    },
  });
  const port = await srv.listen('127.0.0.1', 0);
  return { srv, port, calls };
}

function request(extra: Array<[string, string]>): Buffer {
  return encodeHeaders([
    [':method', 'POST'],
    [':scheme', 'http'],
    [':authority', 'localhost'],
    [':path', PATH],
    ['content-type', 'application/grpc'],
    ...extra,
  ]);
}

const EMPTY_MESSAGE = Buffer.from([0, 0, 0, 0, 0]);

for (const engine of ['frames', 'node'] as const) {
  test(`${engine}: RFC 9113 8.2 field validation resets the stream with PROTOCOL_ERROR and never calls the handler`, async () => {
    const { srv, port, calls } = await start(engine);
    try {
      // [case, field, nghttp2 (node 20) drops the field instead of resetting the stream]
      const bad: Array<[string, [string, string], boolean]> = [
        ['CR LF in a value', ['clientcluster', 'east\r\nx-injected: 1'], true],
        ['LF in a value', ['x-a', 'a\nb'], true],
        ['NUL in a value', ['x-a', 'a\0b'], true],
        ['leading space in a value', ['x-a', ' a'], true],
        ['trailing tab in a value', ['x-a', 'a\t'], true],
        ['uppercase name', ['X-Upper', 'v'], false],
        ['space in a name', ['x a', 'v'], true],
        ['colon inside a name', ['x:a', 'v'], true],
        ['te other than trailers', ['te', 'gzip'], false],
      ];
      for (const [name, field, nghttp2Drops] of bad) {
        const p = await RawPeer.open(port);
        const before = calls.length;
        p.send(PREFACE, frame(T.SETTINGS, 0, 0), frame(T.HEADERS, 4, 1, request([field])), frame(T.DATA, 1, 1, EMPTY_MESSAGE));
        await p.until(
          (x) => x.reset(1) !== undefined || x.goaway() || x.frames.some((f) => f.type === T.HEADERS && f.id === 1 && f.flags & 1),
          3000,
        );
        const code = p.reset(1) ?? p.goaway()?.code;
        p.close();
        if (engine === 'node' && nghttp2Drops && code === undefined) {
          // nghttp2 strips the field and serves the request without it: the value never reaches the handler.
          assert.equal(calls.length, before + 1, `${engine}, ${name}: served without the field`);
          assert.equal(calls[before][field[0].toLowerCase()], undefined, `${engine}, ${name}: the field was dropped`);
          calls.pop();
          continue;
        }
        assert.equal(code, PROTOCOL_ERROR, `${engine}, ${name}: RST_STREAM PROTOCOL_ERROR`);
        assert.equal(calls.length, before, `${engine}, ${name}: the handler was not called`);
      }
      assert.equal(calls.length, 0, `${engine}: the handler never saw a malformed field`);
      // A valid request with te: trailers and a value with inner spaces still gets through.
      const p = await RawPeer.open(port);
      p.send(
        PREFACE,
        frame(T.SETTINGS, 0, 0),
        frame(
          T.HEADERS,
          4,
          1,
          request([
            ['te', 'trailers'],
            ['clientcluster', 'east west'],
          ]),
        ),
        frame(T.DATA, 1, 1, EMPTY_MESSAGE),
      );
      await p.until((x) => x.frames.some((f) => f.type === T.HEADERS && f.id === 1 && f.flags & 1), 3000);
      p.close();
      assert.equal(calls.length, 1);
      assert.equal(calls[0].clientcluster, 'east west');
    } finally {
      await srv.close(0);
    }
  });

  test(`${engine}: an unfinished request is reset when its deadline passes, and its bytes leave the process budget`, async () => {
    requestBudget.setSweepInterval(20);
    const { srv, port, calls } = await start(engine, { requestTimeoutMs: 100 });
    try {
      const before = requestBudget.used;
      const p = await RawPeer.open(port);
      // Headers and part of a body, never END_STREAM.
      p.send(PREFACE, frame(T.SETTINGS, 0, 0), frame(T.HEADERS, 4, 1, request([])), frame(T.DATA, 0, 1, Buffer.alloc(3000)));
      await p.until((x) => x.reset(1) !== undefined, 3000);
      assert.ok(p.reset(1) !== undefined, `${engine}: RST_STREAM on the stalled stream`);
      assert.ok(await eventually(() => requestBudget.used === before), 'budget released');
      assert.equal(calls.length, 0);
      p.close();
    } finally {
      await srv.close(0);
      requestBudget.setSweepInterval(1000);
    }
  });

  test(`${engine}: a connection that never sends its preface and SETTINGS is closed`, async () => {
    requestBudget.setSweepInterval(20);
    const { srv, port } = await start(engine, { handshakeTimeoutMs: 100 });
    try {
      const p = await RawPeer.open(port);
      p.send(Buffer.from('PRI * HTTP/2.0\r\n'));
      await p.until((x) => x.closed, 3000);
      assert.ok(p.closed, `${engine}: closed`);
    } finally {
      await srv.close(0);
      requestBudget.setSweepInterval(1000);
    }
  });
}

test('node engine: the process budget sheds its oldest unauthenticated stream with REFUSED_STREAM', async () => {
  const { srv, port, calls } = await start('node');
  const limit = requestBudget.limit;
  try {
    const a = await RawPeer.open(port);
    a.send(PREFACE, frame(T.SETTINGS, 0, 0), frame(T.HEADERS, 4, 1, request([])), frame(T.DATA, 0, 1, Buffer.alloc(16_000)));
    const base = requestBudget.used;
    assert.ok(await eventually(() => requestBudget.used > 16_000), 'first request charged');
    requestBudget.limit = requestBudget.used + 20_000;
    const b = await RawPeer.open(port);
    b.send(
      PREFACE,
      frame(T.SETTINGS, 0, 0),
      frame(T.HEADERS, 4, 1, request([])),
      frame(T.DATA, 0, 1, Buffer.alloc(16_000)),
      frame(T.DATA, 0, 1, Buffer.alloc(16_000)),
    );
    await a.until((x) => x.reset(1) !== undefined, 3000);
    assert.equal(a.reset(1), 7 /* REFUSED_STREAM */, 'the oldest stream was shed');
    assert.equal(b.reset(1), undefined, 'the newer one was kept');
    b.send(frame(T.DATA, 1, 1, Buffer.alloc(0)));
    a.close();
    b.close();
    assert.ok(await eventually(() => requestBudget.used <= base), 'budget released');
    assert.equal(calls.length, 0, 'bodies of 32 KB are not gRPC messages: no handler');
  } finally {
    requestBudget.limit = limit;
    await srv.close(0);
  }
});

test('fieldError: the RFC 9113 8.2 rules on single fields', () => {
  assert.equal(fieldError(':path', '/a b'), undefined);
  assert.equal(fieldError('x-ok', 'v a l'), undefined);
  assert.equal(fieldError('te', 'trailers'), undefined);
  assert.equal(fieldError('x-latin1', 'caf\xe9'), undefined);
  for (const [n, v] of [
    ['', 'v'],
    ['X', 'v'],
    ['a b', 'v'],
    ['a\u0100', 'v'],
    ['a', 'v\r'],
    ['a', '\0'],
    ['a', ' v'],
    ['a', 'v '],
    ['te', 'gzip'],
  ])
    assert.ok(fieldError(n, v), `${JSON.stringify(n)}: ${JSON.stringify(v)}`);
});

test('node:http2 options carry the limits', () => {
  const o = nodeH2ServerOptions(DEFAULT_LIMITS);
  assert.equal(o.maxSettings, 32);
  assert.equal(o.maxSessionMemory, 16);
  assert.equal(o.maxHeaderListPairs, 128);
  assert.equal(o.maxOutstandingPings, 10);
  assert.equal(o.maxSessionInvalidFrames, 100);
  assert.equal(o.maxSessionRejectedStreams, 100);
  assert.equal(o.unknownProtocolTimeout, DEFAULT_LIMITS.handshakeTimeoutMs);
  assert.deepEqual(o.settings, { maxConcurrentStreams: 1000, maxHeaderListSize: 16 * 1024, enablePush: false });
});
