import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  constants,
  createSecureServer,
  type Http2SecureServer,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
  type Settings,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { opensslOk } from '../../test/helpers/openssl.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { H2Client, prepareRequest, type H2ClientOptions, type PreparedRequest } from './h2raw.js';
import { encodeIndexed, encodeLiteral, HpackDecoder } from './hpack.js';

let cert = '';
let key = '';
/** Another self-signed certificate for localhost: as a CA, it must not vouch for the server. */
let otherCert = '';
const tmp = tempDir('meshca-h2raw-');
function selfSigned(name: string): void {
  opensslOk([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost',
    '-days',
    '1',
    '-keyout',
    join(tmp.path, `${name}-key.pem`),
    '-out',
    join(tmp.path, `${name}.pem`),
  ]);
}
before(() => {
  selfSigned('server');
  selfSigned('other');
  cert = readFileSync(join(tmp.path, 'server.pem'), 'utf8');
  key = readFileSync(join(tmp.path, 'server-key.pem'), 'utf8');
  otherCert = readFileSync(join(tmp.path, 'other.pem'), 'utf8');
});
after(() => tmp.cleanup());

function grpcFrame(msg: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(msg.length, 1);
  return Buffer.concat([h, msg]);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function request(path: string, msg: Buffer, authority = 'localhost'): PreparedRequest {
  return prepareRequest(
    {
      path,
      authority,
      headers: [
        ['content-type', 'application/grpc'],
        ['te', 'trailers'],
        ['authorization', `Bearer token-for-${path}`],
      ],
    },
    grpcFrame(msg),
  );
}

interface Outcome {
  err?: string;
  body?: Buffer;
}

function call(c: H2Client, req: PreparedRequest, keep = true): Promise<Outcome> {
  return new Promise((resolve) => c.call(req, keep, (err, body) => resolve({ err, body })));
}

/** The message inside a unary gRPC response body. */
function message(o: Outcome): Buffer {
  assert.equal(o.err, undefined);
  assert.ok(o.body);
  assert.equal(o.body.readUInt32BE(1), o.body.length - 5);
  return o.body.subarray(5);
}

type Handler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, body: Buffer) => void;

interface TestServer {
  server: Http2SecureServer;
  port: number;
  sessions: ServerHttp2Session[];
  maxActive: number;
  close(): Promise<void>;
}

async function startServer(routes: Record<string, Handler>, settings: Settings = {}, extra: object = {}): Promise<TestServer> {
  const server = createSecureServer({ cert, key, settings, allowHTTP1: false, ...extra });
  const t: TestServer = {
    server,
    port: 0,
    sessions: [],
    maxActive: 0,
    close: () =>
      new Promise((resolve) => {
        for (const s of t.sessions) s.destroy();
        server.close(() => resolve());
      }),
  };
  let active = 0;
  server.on('session', (s: ServerHttp2Session) => {
    t.sessions.push(s);
    s.on('error', () => {});
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on('error', () => {});
    active++;
    t.maxActive = Math.max(t.maxActive, active);
    stream.once('close', () => active--);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const h = routes[String(headers[':path'])];
      if (!h) return stream.respond({ ':status': 404 }, { endStream: true });
      h(stream, headers, Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.port = (server.address() as AddressInfo).port;
  return t;
}

function client(t: TestServer, o: Partial<H2ClientOptions> = {}): H2Client {
  return new H2Client({ host: '127.0.0.1', port: t.port, ca: cert, servername: 'localhost', ...o });
}

/** A unary gRPC answer: headers, one DATA frame, trailers grpc-status 0. */
function answer(stream: ServerHttp2Stream, msg: Buffer, extraHeaders: Record<string, string> = {}): void {
  if (stream.destroyed) return;
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', ...extraHeaders }, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(grpcFrame(msg));
}

/** Describes what the server received, so the client can check its own request encoding. */
function echo(stream: ServerHttp2Stream, h: IncomingHttpHeaders, body: Buffer): void {
  answer(
    stream,
    Buffer.from(
      JSON.stringify({
        method: h[':method'],
        scheme: h[':scheme'],
        path: h[':path'],
        authority: h[':authority'],
        contentType: h['content-type'],
        te: h.te,
        authorization: h.authorization,
        bodySha: sha(body),
        bodyLen: body.length,
      }),
    ),
  );
}

describe('h2raw against node:http2', () => {
  let t: TestServer;
  const bigHeader = Array.from({ length: 3000 }, (_, i) => sha(Buffer.from(String(i))).slice(0, 9)).join(''); // 27 KB, CONTINUATION
  before(async () => {
    t = await startServer(
      {
        '/echo': echo,
        '/trailers-only': (s) =>
          s.respond(
            {
              ':status': 200,
              'content-type': 'application/grpc',
              'grpc-status': '7',
              'grpc-message': 'permission denied: caf%C3%A9 100%25',
            },
            { endStream: true },
          ),
        '/error-trailers': (s) => {
          s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          s.once('wantTrailers', () => s.sendTrailers({ 'grpc-status': '3', 'grpc-message': 'bad csr' }));
          s.end();
        },
        '/http-500': (s) => s.respond({ ':status': 500 }, { endStream: true }),
        '/no-message': (s) => {
          s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          s.once('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
          s.end();
        },
        '/truncated': (s) => {
          s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          s.once('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
          s.end(grpcFrame(Buffer.alloc(100)).subarray(0, 50));
        },
        '/no-grpc-status': (s) => {
          s.respond({ ':status': 200, 'content-type': 'application/grpc' });
          s.end(grpcFrame(Buffer.from('x')));
        },
        '/rst': (s) => s.close(constants.NGHTTP2_REFUSED_STREAM),
        '/big-headers': (s) => answer(s, Buffer.from('ok'), { 'x-big': bigHeader }),
        '/big-response': (s, _h, body) => answer(s, Buffer.alloc(40_000, body[5] ?? 0)),
      },
      {},
      { paddingStrategy: constants.PADDING_STRATEGY_MAX },
    );
  });
  after(() => t.close());

  test('requests carry the pre-encoded headers and body; responses decode', async () => {
    const c = client(t);
    const msg = Buffer.from('hello gRPC');
    const out = await call(c, request('/echo', msg, `localhost:${t.port}`));
    assert.deepEqual(JSON.parse(message(out).toString()), {
      method: 'POST',
      scheme: 'https',
      path: '/echo',
      authority: `localhost:${t.port}`,
      contentType: 'application/grpc',
      te: 'trailers',
      authorization: 'Bearer token-for-/echo',
      bodySha: sha(grpcFrame(msg)),
      bodyLen: msg.length + 5,
    });
    // Many calls at once on one connection, each a distinct request, every outcome checked.
    const reqs = Array.from({ length: 200 }, (_, i) => request('/echo', Buffer.from(`call ${i} `.repeat(i % 50))));
    const outs = await Promise.all(reqs.map((r) => call(c, r)));
    for (const [i, o] of outs.entries()) {
      const got = JSON.parse(message(o).toString()) as { bodySha: string };
      assert.equal(got.bodySha, sha(reqs[i].body), `call ${i}`);
    }
    // Without keepBody the call still succeeds but hands back no body.
    assert.deepEqual(await call(c, reqs[0], false), { err: undefined, body: undefined });
    assert.equal(c.connections, 1);
    await c.close();
    assert.equal(c.connections, 0);
  });

  test('gRPC and HTTP failures give the grpc-status error strings', async () => {
    const c = client(t);
    const m = Buffer.from('x');
    assert.deepEqual(await call(c, request('/trailers-only', m)), { err: 'grpc-status 7 permission denied: café 100%', body: undefined });
    assert.deepEqual(await call(c, request('/error-trailers', m)), { err: 'grpc-status 3 bad csr', body: undefined });
    assert.deepEqual(await call(c, request('/http-500', m)), { err: 'grpc-status none HTTP status 500', body: undefined });
    assert.deepEqual(await call(c, request('/missing', m)), { err: 'grpc-status none HTTP status 404', body: undefined });
    assert.deepEqual(await call(c, request('/no-message', m)), { err: 'grpc-status 0 but no response message', body: undefined });
    assert.deepEqual(await call(c, request('/truncated', m)), {
      err: 'grpc-status 0 but an incomplete response message (50 bytes)',
      body: undefined,
    });
    assert.deepEqual(await call(c, request('/no-grpc-status', m)), { err: 'grpc-status none ', body: undefined });
    assert.deepEqual(await call(c, request('/rst', m)), { err: 'stream reset by server: REFUSED_STREAM', body: undefined });
    // The connection survives all of these.
    assert.equal(message(await call(c, request('/echo', m))).length > 0, true);
    assert.equal(c.connections, 1);
    await c.close();
  });

  test('CONTINUATION frames and padded frames', async () => {
    const c = client(t);
    const outs = await Promise.all(Array.from({ length: 5 }, () => call(c, request('/big-headers', Buffer.from('x')))));
    for (const o of outs) assert.equal(message(o).toString(), 'ok');
    await c.close();
  });

  test('receive windows: WINDOW_UPDATEs keep long transfers going', async () => {
    // Our windows at the 64 KiB minimum: 40 calls of 40 KB each need WINDOW_UPDATEs for the
    // connection, and each response is most of a stream window.
    const c = client(t, { streamWindow: 65535, connectionWindow: 65535 });
    for (let round = 0; round < 4; round++) {
      const outs = await Promise.all(
        Array.from({ length: 10 }, (_, i) => call(c, request('/big-response', Buffer.from([round * 10 + i])))),
      );
      for (const [i, o] of outs.entries()) assert.deepEqual(message(o), Buffer.alloc(40_000, round * 10 + i));
    }
    await c.close();
  });

  test('the server PINGs: answered', async () => {
    const c = client(t);
    await call(c, request('/echo', Buffer.from('x')));
    const s = t.sessions[t.sessions.length - 1];
    const rtt = await new Promise<number>((resolve, reject) => s.ping((err, ms) => (err ? reject(err) : resolve(ms))));
    assert.ok(rtt >= 0);
    await c.close();
  });

  test('stream ids near the limit: a fresh connection takes over', async () => {
    const before = t.sessions.length;
    const c = client(t, { maxStreamId: 9 }); // four streams (1, 3, 5, 7) per connection
    for (let i = 0; i < 10; i++) {
      const outs = await Promise.all([call(c, request('/echo', Buffer.from(`a${i}`))), call(c, request('/echo', Buffer.from(`b${i}`)))]);
      for (const o of outs) assert.equal(o.err, undefined);
    }
    assert.equal(t.sessions.length - before, 5);
    await c.close();
  });

  test('the server certificate is verified against the CA and the name', async () => {
    const wrongName = client(t, { servername: 'not-localhost' });
    const o = await call(wrongName, request('/echo', Buffer.from('x')));
    assert.match(o.err ?? '', /not-localhost/);
    assert.equal(wrongName.isOpen, false);
    const otherCa = client(t, { ca: otherCert });
    const o2 = await call(otherCa, request('/echo', Buffer.from('x')));
    assert.match(o2.err ?? '', /self.signed|unable to verify|signature/i);
    assert.equal(otherCa.isOpen, false);
  });
});

describe('h2raw flow control and stream limits', () => {
  test('MAX_CONCURRENT_STREAMS 2 and a 1000-byte initial window: bodies larger than the window', async () => {
    const t = await startServer({ '/echo': echo }, { maxConcurrentStreams: 2, initialWindowSize: 1000, headerTableSize: 256 });
    try {
      const c = client(t);
      // 30 calls of 5 KB: each body needs several WINDOW_UPDATEs, and together they exceed the
      // 65,535-byte connection window.
      const reqs = Array.from({ length: 30 }, (_, i) => request('/echo', Buffer.alloc(5000 + i, i)));
      const outs = await Promise.all(reqs.map((r) => call(c, r)));
      for (const [i, o] of outs.entries()) {
        const got = JSON.parse(message(o).toString()) as { bodySha: string; bodyLen: number };
        assert.equal(got.bodyLen, 5005 + i);
        assert.equal(got.bodySha, sha(reqs[i].body), `call ${i}`);
      }
      assert.equal(t.maxActive, 2);
      assert.equal(t.sessions.length, 1);
      await c.close();
    } finally {
      await t.close();
    }
  });
});

describe('h2raw and GOAWAY', () => {
  test('streams above last-stream-id fail, the others finish, new calls use a new connection', async () => {
    const held: { stream: ServerHttp2Stream; id: number }[] = [];
    const t = await startServer({
      '/hold': (stream) => {
        held.push({ stream, id: stream.id! });
        if (held.length === 6) {
          // GOAWAY: streams 1, 3, 5 will be answered, 7, 9, 11 never.
          stream.session!.goaway(constants.NGHTTP2_NO_ERROR, 5);
          setImmediate(() => {
            for (const h of held) if (h.id <= 5) answer(h.stream, Buffer.from(`done ${h.id}`));
          });
        }
      },
      '/echo': echo,
    });
    try {
      const c = client(t);
      await c.connect();
      const outs = await Promise.all(Array.from({ length: 6 }, (_, i) => call(c, request('/hold', Buffer.from(String(i))))));
      assert.deepEqual(
        outs.map((o) => o.err ?? message(o).toString()),
        [
          'done 1',
          'done 3',
          'done 5',
          'GOAWAY NO_ERROR: stream 7 not processed',
          'GOAWAY NO_ERROR: stream 9 not processed',
          'GOAWAY NO_ERROR: stream 11 not processed',
        ],
      );
      const again = await Promise.all(Array.from({ length: 4 }, (_, i) => call(c, request('/echo', Buffer.from(String(i))))));
      for (const o of again) assert.equal(o.err, undefined);
      assert.equal(t.sessions.length, 2);
      await c.close();
    } finally {
      await t.close();
    }
  });

  test('a server that closes the connection fails the calls in flight; the next calls reconnect', async () => {
    let n = 0;
    const sockets: TLSSocket[] = [];
    const t = await startServer({
      '/die': () => {
        // The TCP connection drops under the HTTP/2 session: no GOAWAY, no RST_STREAM.
        if (++n === 3) for (const s of sockets) s.destroy();
      },
      '/echo': echo,
    });
    t.server.on('secureConnection', (s: TLSSocket) => sockets.push(s));
    try {
      const c = client(t);
      await c.connect();
      const outs = await Promise.all(Array.from({ length: 3 }, () => call(c, request('/die', Buffer.from('x')))));
      assert.equal(outs[0].err, outs[1].err);
      assert.equal(outs[0].err, outs[2].err);
      assert.match(outs[0].err ?? '', /^(connection closed|read ECONNRESET)$/);
      const o = await call(c, request('/echo', Buffer.from('y')));
      assert.equal(o.err, undefined);
      assert.equal(t.sessions.length, 2);
      await c.close();
    } finally {
      await t.close();
    }
  });
});

/**
 * A scripted HTTP/2 server on raw TLS, for frame shapes node:http2 does not produce: HEADERS with
 * PRIORITY and padding split over CONTINUATION, 1xx headers, a gRPC prefix split across DATA
 * frames, and protocol violations.
 */
describe('h2raw against a scripted server', () => {
  function frame(type: number, flags: number, sid: number, payload: Buffer): Buffer {
    const h = Buffer.alloc(9);
    h.writeUIntBE(payload.length, 0, 3);
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(sid, 5);
    return Buffer.concat([h, payload]);
  }

  /** Accepts one connection, reads the client's frames, and calls `onRequest` with each stream id. */
  async function scripted(onRequest: (sid: number, sock: TLSSocket) => void) {
    const frames: { type: number; flags: number; sid: number; payload: Buffer }[] = [];
    const server = createTlsServer({ cert, key, ALPNProtocols: ['h2'] }, (sock) => {
      sock.on('error', () => {});
      let buf = Buffer.alloc(0);
      let prefaceSeen = false;
      const dec = new HpackDecoder();
      sock.write(frame(4, 0, 0, Buffer.alloc(0))); // empty SETTINGS
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (!prefaceSeen) {
          if (buf.length < 24) return;
          buf = buf.subarray(24);
          prefaceSeen = true;
        }
        while (buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
          const len = buf.readUIntBE(0, 3);
          const f = { type: buf[3], flags: buf[4], sid: buf.readUInt32BE(5), payload: buf.subarray(9, 9 + len) };
          buf = buf.subarray(9 + len);
          frames.push(f);
          if (f.type === 1) dec.decode(f.payload, 0, f.payload.length, []);
          if (f.type === 0 && f.flags & 1) onRequest(f.sid, sock);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    return { port, frames, close: () => new Promise<void>((r) => server.close(() => r())) };
  }

  const block = (...parts: Buffer[]): Buffer => Buffer.concat(parts);
  const status200 = encodeIndexed(8);
  const ct = encodeLiteral('content-type', 'application/grpc');
  const trailers0 = encodeLiteral('grpc-status', '0');

  test('PRIORITY + PADDED HEADERS over CONTINUATION, 1xx, split gRPC prefix, padded DATA', async () => {
    const s = await scripted((sid, sock) => {
      const out: Buffer[] = [];
      // 100 Continue first (informational headers, ignored).
      out.push(frame(1, 0x4, sid, encodeLiteral(':status', '100')));
      // Final headers: PADDED | PRIORITY, block split over HEADERS + CONTINUATION + CONTINUATION.
      const hb = block(status200, ct, encodeLiteral('x-filler', 'z'.repeat(300)));
      const pad = 7;
      out.push(
        frame(
          1,
          0x8 | 0x20,
          sid,
          Buffer.concat([Buffer.from([pad]), Buffer.from([0, 0, 0, 0, 16]), hb.subarray(0, 10), Buffer.alloc(pad)]),
        ),
      );
      out.push(frame(9, 0, sid, hb.subarray(10, 200)));
      out.push(frame(9, 0x4, sid, hb.subarray(200)));
      // The message: gRPC prefix split after 2 bytes, the second DATA padded.
      const msg = grpcFrame(Buffer.from('split message'));
      out.push(frame(0, 0, sid, msg.subarray(0, 2)));
      out.push(frame(0, 0x8, sid, Buffer.concat([Buffer.from([3]), msg.subarray(2), Buffer.alloc(3)])));
      out.push(frame(1, 0x4 | 0x1, sid, trailers0));
      sock.write(Buffer.concat(out));
    });
    try {
      const c = new H2Client({ host: '127.0.0.1', port: s.port, ca: cert, servername: 'localhost' });
      const outs = await Promise.all([call(c, request('/a', Buffer.from('1'))), call(c, request('/b', Buffer.from('2')))]);
      for (const o of outs) assert.equal(message(o).toString(), 'split message');
      // The client's first header block starts with a dynamic table size update to 0.
      const headers = s.frames.filter((f) => f.type === 1);
      assert.equal(headers[0].payload[0], 0x20);
      assert.notEqual(headers[1].payload[0], 0x20);
      // It ACKed our SETTINGS.
      assert.ok(s.frames.some((f) => f.type === 4 && f.flags === 1));
      c.destroy();
    } finally {
      await s.close();
    }
  });

  test('a frame interleaved in a header block is a connection error (GOAWAY PROTOCOL_ERROR)', async () => {
    const s = await scripted((sid, sock) => {
      sock.write(Buffer.concat([frame(1, 0, sid, status200), frame(6, 0, 0, Buffer.alloc(8))]));
    });
    try {
      const c = new H2Client({ host: '127.0.0.1', port: s.port, ca: cert, servername: 'localhost' });
      const o = await call(c, request('/a', Buffer.from('1')));
      assert.equal(o.err, 'connection error PROTOCOL_ERROR: frame interleaved in a header block');
      await new Promise((r) => setTimeout(r, 50));
      const goaway = s.frames.find((f) => f.type === 7);
      assert.ok(goaway);
      assert.equal(goaway.payload.readUInt32BE(4), 1);
      c.destroy();
    } finally {
      await s.close();
    }
  });

  test('a broken header block is a COMPRESSION_ERROR', async () => {
    const s = await scripted((sid, sock) => sock.write(frame(1, 0x5, sid, Buffer.from([0xbe]))));
    try {
      const c = new H2Client({ host: '127.0.0.1', port: s.port, ca: cert, servername: 'localhost' });
      const o = await call(c, request('/a', Buffer.from('1')));
      assert.match(o.err ?? '', /^connection error COMPRESSION_ERROR: HPACK: header table index 62/);
      c.destroy();
    } finally {
      await s.close();
    }
  });
});
