/**
 * A hand-written HTTP/2 client (RFC 9113) over a raw node:tls socket, for the load generator: it
 * shares the machine's cores with the server under test, so a call must cost the client as little
 * CPU as possible, far less than node:http2's client takes; here a call is a copy of
 * a pre-encoded HEADERS + DATA template with its stream id patched in, all of one tick's frames go
 * out in one socket write, and response headers go through a small HPACK decoder (hpack.ts).
 *
 * What it implements: ALPN h2 with the server certificate verified, the connection preface and
 * SETTINGS (large receive windows, push disabled), SETTINGS ACK, PING answers, GOAWAY (streams
 * above the last stream id fail, the rest finish, the next calls go to a new connection),
 * RST_STREAM, the peer's SETTINGS_MAX_CONCURRENT_STREAMS (calls queue), the peer's flow-control
 * windows for request bodies (DATA split and held until WINDOW_UPDATE), WINDOW_UPDATEs for what it
 * receives, HEADERS with CONTINUATION, padding and priority, trailers and trailers-only answers.
 * A fresh connection replaces one whose stream ids approach 2^31.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { encodeIndexed, encodeLiteral, encodeSizeUpdate, HpackDecoder, HpackError } from './hpack.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

const DATA = 0x0;
const HEADERS = 0x1;
const PRIORITY = 0x2;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PUSH_PROMISE = 0x5;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;

const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

const SETTINGS_HEADER_TABLE_SIZE = 0x1;
const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTINGS_MAX_FRAME_SIZE = 0x5;

const NO_ERROR = 0x0;
const PROTOCOL_ERROR = 0x1;
const FLOW_CONTROL_ERROR = 0x3;
const FRAME_SIZE_ERROR = 0x6;
const CANCEL = 0x8;
const COMPRESSION_ERROR = 0x9;

const ERROR_NAMES = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
];
export const errorName = (code: number): string => ERROR_NAMES[code] ?? `0x${code.toString(16)}`;

/** Largest frame payload we accept (we never raise SETTINGS_MAX_FRAME_SIZE above the default). */
const OUR_MAX_FRAME = 16384;
const MAX_WINDOW = 0x7fffffff;
const DEFAULT_WINDOW = 65535;

export interface H2ClientOptions {
  host: string;
  port: number;
  /** CA certificates (PEM) the server's certificate must chain to. Without it: plain-text HTTP/2 (prior knowledge). */
  ca?: string | Buffer;
  /** Name checked against the server certificate (and sent as SNI); default: host. */
  servername?: string;
  /** Our SETTINGS_INITIAL_WINDOW_SIZE (receive window of each stream). Default 16 MiB. */
  streamWindow?: number;
  /** Our connection-level receive window. Default 1 GiB. */
  connectionWindow?: number;
  /** Open a new connection once stream ids reach this (default 2^31 - 2^16; tests lower it). */
  maxStreamId?: number;
}

/**
 * A request encoded once: HEADERS frame (END_HEADERS) + DATA frame (END_STREAM), stream ids zero.
 * `wire` is copied for each call with the stream id written at offsets 5 and 9 + blockLen + 5.
 */
export interface PreparedRequest {
  wire: Buffer;
  /** Length of the HPACK header block. */
  blockLen: number;
  /** The header block (a view into wire). */
  block: Buffer;
  /** The DATA payload (a view into wire). */
  body: Buffer;
}

export interface RequestSpec {
  path: string;
  authority: string;
  scheme?: 'https' | 'http';
  /** Further headers, lower-case names, in order. */
  headers: [string, string][];
}

function frameHeader(out: Buffer, at: number, len: number, type: number, flags: number, sid: number): void {
  out[at] = len >>> 16;
  out[at + 1] = (len >>> 8) & 0xff;
  out[at + 2] = len & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  out.writeUInt32BE(sid, at + 5);
}

function frame(type: number, flags: number, sid: number, payload?: Buffer): Buffer {
  const len = payload ? payload.length : 0;
  const b = Buffer.allocUnsafe(9 + len);
  frameHeader(b, 0, len, type, flags, sid);
  if (payload) payload.copy(b, 9);
  return b;
}

/** Encodes a POST request once (header block: static indexes for :method POST and :scheme, literals without indexing). */
export function prepareRequest(r: RequestSpec, body: Buffer): PreparedRequest {
  const block = Buffer.concat([
    encodeIndexed(3), // :method POST
    encodeIndexed(r.scheme === 'http' ? 6 : 7), // :scheme
    encodeLiteral(':path', r.path),
    encodeLiteral(':authority', r.authority),
    ...r.headers.map(([n, v]) => encodeLiteral(n, v)),
  ]);
  const wire = Buffer.alloc(9 + block.length + 9 + body.length);
  frameHeader(wire, 0, block.length, HEADERS, FLAG_END_HEADERS | (body.length === 0 ? FLAG_END_STREAM : 0), 0);
  block.copy(wire, 9);
  const d = 9 + block.length;
  frameHeader(wire, d, body.length, DATA, FLAG_END_STREAM, 0);
  body.copy(wire, d + 9);
  return { wire, blockLen: block.length, block: wire.subarray(9, d), body: wire.subarray(d + 9) };
}

/** Outcome of a call: err undefined on success; body only when asked to keep it. */
export type CallCallback = (err: string | undefined, body: Buffer | undefined) => void;

/** grpc-message is percent-encoded; a malformed escape is shown as it came. */
function grpcMessage(m: string): string {
  if (!m.includes('%')) return m;
  try {
    return decodeURIComponent(m);
  } catch {
    return m;
  }
}

class Stream {
  id = 0;
  /** Request body bytes sent so far; sent === body length once END_STREAM is out. */
  sent = 0;
  localClosed = false;
  sendWindow = 0;
  blocked = false;
  headersDone = false;
  status = 0;
  grpcStatus: string | undefined = undefined;
  grpcMessage = '';
  bodyLen = 0;
  /** gRPC message prefix: bytes seen (0..5), and the declared length. */
  prefixSeen = 0;
  msgLen = 0;
  recvUnacked = 0;
  chunks: Buffer[] | undefined;

  constructor(
    readonly req: PreparedRequest,
    keepBody: boolean,
    readonly done: CallCallback,
  ) {
    if (keepBody) this.chunks = [];
  }
}

function flushTick(c: Conn): void {
  c.flushQueued = false;
  c.flush();
}

/** One TLS (or TCP) connection and its streams. */
class Conn {
  private sock: TLSSocket | Socket;
  /** The server's first SETTINGS arrived: streams may open. */
  ready = false;
  dead = false;
  /** We sent our last bytes (GOAWAY) and ended the socket. */
  private ended = false;
  /** No new streams here (GOAWAY received, ids exhausted, or closing). */
  draining = false;
  private error: string | undefined;
  private nextId = 1;
  private streams = new Map<number, Stream>();
  private active = 0;
  private queue: Stream[] = [];
  private queueHead = 0;
  private blocked: Stream[] = [];

  // Peer settings and our send windows.
  private peerMaxStreams = Infinity;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = 16384;
  private connSendWindow = DEFAULT_WINDOW;
  /** Our first header block starts with a dynamic table size update to 0: we never index, whatever the peer's table size. */
  private sizeUpdateSent = false;

  // Receiving.
  private partial: Buffer | undefined;
  private inData = false;
  private recvUnacked = 0;
  private readonly recvThreshold: number;
  private readonly streamWindow: number;
  private readonly decoder = new HpackDecoder();
  private readonly fields: string[] = [];
  private contStream = 0;
  private contEndStream = false;
  private contParts: Buffer[] = [];

  // Output of the current tick: parts, and for request templates the stream id to patch in.
  private outParts: Buffer[] = [];
  private outSids: number[] = [];
  private outBlockLens: number[] = [];
  private outLen = 0;
  flushQueued = false;

  constructor(private readonly client: H2Client) {
    const o = client.options;
    this.streamWindow = o.streamWindow ?? 1 << 24;
    const connWindow = o.connectionWindow ?? 1 << 30;
    this.recvThreshold = Math.max(1, Math.floor(connWindow / 2));
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(SETTINGS_ENABLE_PUSH, 0);
    settings.writeUInt32BE(0, 2);
    settings.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 6);
    settings.writeUInt32BE(this.streamWindow, 8);
    const hello = [PREFACE, frame(SETTINGS, 0, 0, settings)];
    if (connWindow > DEFAULT_WINDOW) {
      const inc = Buffer.allocUnsafe(4);
      inc.writeUInt32BE(connWindow - DEFAULT_WINDOW, 0);
      hello.push(frame(WINDOW_UPDATE, 0, 0, inc));
    }
    const helloBuf = Buffer.concat(hello);
    if (o.ca !== undefined) {
      const s = tlsConnect({ host: o.host, port: o.port, ca: o.ca, servername: o.servername, ALPNProtocols: ['h2'] });
      s.once('secureConnect', () => {
        if (s.alpnProtocol !== 'h2') {
          this.error = `ALPN: server chose ${s.alpnProtocol || 'no protocol'}, not h2`;
          s.destroy();
          return;
        }
        s.write(helloBuf);
      });
      this.sock = s;
    } else {
      const s = netConnect({ host: o.host, port: o.port });
      s.once('connect', () => s.write(helloBuf));
      this.sock = s;
    }
    this.sock.setNoDelay(true);
    this.sock.on('data', (b: Buffer) => this.onData(b));
    this.sock.on('error', (e: Error) => {
      this.error ??= e.message;
    });
    this.sock.on('close', () => this.onClose());
  }

  /** Queues a call; it starts as soon as the connection is ready and a stream slot is free. */
  enqueue(s: Stream): void {
    if (this.ready && this.active < this.peerMaxStreams && this.queueHead === this.queue.length) {
      this.start(s);
      this.schedule();
    } else this.queue.push(s);
  }

  private schedule(): void {
    if (!this.flushQueued && !this.inData) {
      this.flushQueued = true;
      process.nextTick(flushTick, this);
    }
  }

  private push(b: Buffer): void {
    this.outParts.push(b);
    this.outSids.push(0);
    this.outBlockLens.push(0);
    this.outLen += b.length;
  }

  /** Writes everything gathered since the last flush in one socket write. */
  flush(): void {
    const n = this.outParts.length;
    if (n === 0 || this.dead || this.ended) return;
    const out = Buffer.allocUnsafe(this.outLen);
    let at = 0;
    for (let i = 0; i < n; i++) {
      const p = this.outParts[i];
      p.copy(out, at);
      const sid = this.outSids[i];
      if (sid !== 0) {
        out.writeUInt32BE(sid, at + 5);
        out.writeUInt32BE(sid, at + 9 + this.outBlockLens[i] + 5);
      }
      at += p.length;
    }
    this.outParts.length = 0;
    this.outSids.length = 0;
    this.outBlockLens.length = 0;
    this.outLen = 0;
    this.sock.write(out);
  }

  private start(s: Stream): void {
    const id = this.nextId;
    this.nextId += 2;
    s.id = id;
    s.sendWindow = this.peerInitialWindow;
    this.streams.set(id, s);
    this.active++;
    const req = s.req;
    const bodyLen = req.body.length;
    if (
      this.sizeUpdateSent &&
      bodyLen > 0 &&
      bodyLen <= this.connSendWindow &&
      bodyLen <= s.sendWindow &&
      bodyLen <= this.peerMaxFrame &&
      req.blockLen <= this.peerMaxFrame
    ) {
      // Fast path: the whole template, stream id patched in at flush.
      this.outParts.push(req.wire);
      this.outSids.push(id);
      this.outBlockLens.push(req.blockLen);
      this.outLen += req.wire.length;
      this.connSendWindow -= bodyLen;
      s.sendWindow -= bodyLen;
      s.sent = bodyLen;
      s.localClosed = true;
    } else {
      this.sendHeaders(s);
      this.sendData(s);
    }
    if (this.nextId >= this.client.maxStreamId) this.drain();
  }

  private sendHeaders(s: Stream): void {
    let block = s.req.block;
    if (!this.sizeUpdateSent) {
      block = Buffer.concat([encodeSizeUpdate(0), block]);
      this.sizeUpdateSent = true;
    }
    const endStream = s.req.body.length === 0 ? FLAG_END_STREAM : 0;
    let off = 0;
    let type = HEADERS;
    do {
      const n = Math.min(block.length - off, this.peerMaxFrame);
      const last = off + n === block.length;
      const flags = (type === HEADERS ? endStream : 0) | (last ? FLAG_END_HEADERS : 0);
      this.push(frame(type, flags, s.id, block.subarray(off, off + n)));
      off += n;
      type = CONTINUATION;
    } while (off < block.length);
    if (endStream) s.localClosed = true;
  }

  /** Sends as much of the request body as the windows allow; the rest waits for WINDOW_UPDATE. */
  private sendData(s: Stream): void {
    const body = s.req.body;
    while (s.sent < body.length) {
      const n = Math.min(body.length - s.sent, s.sendWindow, this.connSendWindow, this.peerMaxFrame);
      if (n <= 0) break;
      const last = s.sent + n === body.length;
      const h = Buffer.allocUnsafe(9);
      frameHeader(h, 0, n, DATA, last ? FLAG_END_STREAM : 0, s.id);
      this.push(h);
      this.push(body.subarray(s.sent, s.sent + n));
      s.sent += n;
      s.sendWindow -= n;
      this.connSendWindow -= n;
      if (last) s.localClosed = true;
    }
    if (!s.localClosed && !s.blocked) {
      s.blocked = true;
      this.blocked.push(s);
    }
  }

  /** After a window grew: resume blocked request bodies in order. */
  private resumeBlocked(): void {
    if (this.blocked.length === 0) return;
    const list = this.blocked;
    this.blocked = [];
    for (const s of list) {
      s.blocked = false;
      if (this.streams.get(s.id) === s && !s.localClosed) this.sendData(s);
    }
    this.schedule();
  }

  private pumpQueue(): void {
    while (this.queueHead < this.queue.length && this.active < this.peerMaxStreams && !this.draining) {
      const s = this.queue[this.queueHead++];
      this.start(s);
    }
    if (this.queueHead === this.queue.length && this.queueHead > 0) {
      this.queue.length = 0;
      this.queueHead = 0;
    }
    this.schedule();
  }

  /** Takes the calls that never started here (for another connection). */
  private takeQueue(): Stream[] {
    const q = this.queue.slice(this.queueHead);
    this.queue.length = 0;
    this.queueHead = 0;
    return q;
  }

  /** No new streams here; the calls waiting move to a new connection; close when the last stream ends. */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    this.client.detach(this);
    const q = this.takeQueue();
    if (q.length) this.client.requeue(q);
    this.maybeClose();
  }

  private maybeClose(): void {
    if (this.draining && this.active === 0 && !this.dead && !this.ended) {
      this.push(this.goaway(NO_ERROR));
      this.flush();
      this.end();
    }
  }

  /** Ends the socket once our last bytes are out (some servers never close their side after a GOAWAY exchange). */
  private end(): void {
    this.ended = true;
    const sock = this.sock;
    sock.end(() => sock.destroy());
  }

  private goaway(code: number): Buffer {
    const p = Buffer.alloc(8);
    p.writeUInt32BE(0, 0); // we accept no server-initiated streams
    p.writeUInt32BE(code, 4);
    return frame(GOAWAY, 0, 0, p);
  }

  private onData(chunk: Buffer): void {
    if (this.dead) return; // after a connection error, until the socket closes
    let buf = chunk;
    if (this.partial) {
      buf = Buffer.concat([this.partial, chunk]);
      this.partial = undefined;
    }
    const end = buf.length;
    let pos = 0;
    this.inData = true;
    try {
      while (end - pos >= 9) {
        const len = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2];
        if (len > OUR_MAX_FRAME) return this.connError(FRAME_SIZE_ERROR, `frame of ${len} bytes exceeds ${OUR_MAX_FRAME}`);
        if (end - pos - 9 < len) break;
        const type = buf[pos + 3];
        const flags = buf[pos + 4];
        const sid = buf.readUInt32BE(pos + 5) & 0x7fffffff;
        this.onFrame(type, flags, sid, buf, pos + 9, pos + 9 + len);
        if (this.dead) return;
        pos += 9 + len;
      }
      if (pos < end) this.partial = buf.subarray(pos);
    } finally {
      this.inData = false;
      this.flush();
    }
  }

  private onFrame(type: number, flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    if (this.contStream !== 0 && type !== CONTINUATION) return this.connError(PROTOCOL_ERROR, 'frame interleaved in a header block');
    switch (type) {
      case DATA:
        return this.onDataFrame(flags, sid, buf, start, end);
      case HEADERS: {
        if (sid === 0) return this.connError(PROTOCOL_ERROR, 'HEADERS on stream 0');
        let p = start;
        let e = end;
        if (flags & FLAG_PADDED) {
          if (p >= e) return this.connError(FRAME_SIZE_ERROR, 'HEADERS too short for its padding');
          const pad = buf[p++];
          if (pad > e - p) return this.connError(PROTOCOL_ERROR, 'HEADERS padding exceeds the frame');
          e -= pad;
        }
        if (flags & FLAG_PRIORITY) {
          p += 5;
          if (p > e) return this.connError(FRAME_SIZE_ERROR, 'HEADERS too short for its priority');
        }
        const endStream = (flags & FLAG_END_STREAM) !== 0;
        if (flags & FLAG_END_HEADERS) return this.onHeaderBlock(sid, endStream, buf, p, e);
        this.contStream = sid;
        this.contEndStream = endStream;
        this.contParts = [buf.subarray(p, e)];
        return;
      }
      case CONTINUATION: {
        if (sid === 0 || sid !== this.contStream) return this.connError(PROTOCOL_ERROR, 'unexpected CONTINUATION');
        this.contParts.push(buf.subarray(start, end));
        if (flags & FLAG_END_HEADERS) {
          const block = Buffer.concat(this.contParts);
          this.contStream = 0;
          this.contParts = [];
          this.onHeaderBlock(sid, this.contEndStream, block, 0, block.length);
        }
        return;
      }
      case PRIORITY:
        if (sid === 0) return this.connError(PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (end - start !== 5) return this.connError(FRAME_SIZE_ERROR, 'PRIORITY of the wrong size');
        return;
      case RST_STREAM: {
        if (sid === 0) return this.connError(PROTOCOL_ERROR, 'RST_STREAM on stream 0');
        if (end - start !== 4) return this.connError(FRAME_SIZE_ERROR, 'RST_STREAM of the wrong size');
        if (this.isIdle(sid)) return this.connError(PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
        const s = this.streams.get(sid);
        if (s) this.finish(s, `stream reset by server: ${errorName(buf.readUInt32BE(start))}`, false);
        return;
      }
      case SETTINGS:
        return this.onSettings(flags, sid, buf, start, end);
      case PUSH_PROMISE:
        return this.connError(PROTOCOL_ERROR, 'PUSH_PROMISE with push disabled');
      case PING:
        if (sid !== 0) return this.connError(PROTOCOL_ERROR, 'PING on a stream');
        if (end - start !== 8) return this.connError(FRAME_SIZE_ERROR, 'PING of the wrong size');
        if ((flags & FLAG_ACK) === 0) this.push(frame(PING, FLAG_ACK, 0, buf.subarray(start, end)));
        return;
      case GOAWAY:
        if (sid !== 0) return this.connError(PROTOCOL_ERROR, 'GOAWAY on a stream');
        if (end - start < 8) return this.connError(FRAME_SIZE_ERROR, 'GOAWAY too short');
        return this.onGoaway(buf.readUInt32BE(start) & 0x7fffffff, buf.readUInt32BE(start + 4), buf.toString('latin1', start + 8, end));
      case WINDOW_UPDATE:
        return this.onWindowUpdate(sid, buf, start, end);
      default:
        return; // unknown frame types are ignored
    }
  }

  /** A stream id we never opened (idle), or one the server may not use. */
  private isIdle(sid: number): boolean {
    return (sid & 1) === 0 || sid >= this.nextId;
  }

  private onDataFrame(flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    if (sid === 0) return this.connError(PROTOCOL_ERROR, 'DATA on stream 0');
    const flowLen = end - start;
    this.recvUnacked += flowLen;
    if (this.recvUnacked >= this.recvThreshold) {
      this.push(windowUpdate(0, this.recvUnacked));
      this.recvUnacked = 0;
    }
    let p = start;
    let e = end;
    if (flags & FLAG_PADDED) {
      if (p >= e) return this.connError(FRAME_SIZE_ERROR, 'DATA too short for its padding');
      const pad = buf[p++];
      if (pad > e - p) return this.connError(PROTOCOL_ERROR, 'DATA padding exceeds the frame');
      e -= pad;
    }
    const s = this.streams.get(sid);
    if (!s) {
      if (this.isIdle(sid)) return this.connError(PROTOCOL_ERROR, 'DATA on an idle stream');
      return; // a stream we already finished (reset): counted for the connection window only
    }
    if (!s.headersDone) return this.streamError(s, PROTOCOL_ERROR, 'DATA before response headers');
    const endStream = (flags & FLAG_END_STREAM) !== 0;
    if (!endStream) {
      s.recvUnacked += flowLen;
      if (s.recvUnacked >= this.streamWindow / 2) {
        this.push(windowUpdate(sid, s.recvUnacked));
        s.recvUnacked = 0;
      }
    }
    // The gRPC length prefix (1 flag byte, 4 length bytes), possibly split over frames.
    let i = p;
    while (s.prefixSeen < 5 && i < e) {
      if (s.prefixSeen > 0) s.msgLen = s.msgLen * 256 + buf[i];
      s.prefixSeen++;
      i++;
    }
    s.bodyLen += e - p;
    if (s.chunks && e > p) s.chunks.push(buf.subarray(p, e));
    if (endStream) this.complete(s);
  }

  private onHeaderBlock(sid: number, endStream: boolean, buf: Buffer, start: number, end: number): void {
    const f = this.fields;
    f.length = 0;
    try {
      this.decoder.decode(buf, start, end, f);
    } catch (e) {
      if (e instanceof HpackError) return this.connError(COMPRESSION_ERROR, `HPACK: ${e.message}`);
      throw e;
    }
    const s = this.streams.get(sid);
    if (!s) {
      if (this.isIdle(sid)) this.connError(PROTOCOL_ERROR, 'HEADERS on an idle stream');
      return;
    }
    if (!s.headersDone) {
      let status = '';
      for (let i = 0; i < f.length; i += 2) {
        const n = f[i];
        if (n === ':status') status = f[i + 1];
        else if (n === 'grpc-status') s.grpcStatus = f[i + 1];
        else if (n === 'grpc-message') s.grpcMessage = f[i + 1];
      }
      if (status.length === 3 && status[0] === '1') {
        // Informational (1xx): the final headers follow.
        if (endStream) this.streamError(s, PROTOCOL_ERROR, 'informational response ends the stream');
        return;
      }
      s.status = Number(status) || 0;
      s.headersDone = true;
    } else {
      if (!endStream) return this.streamError(s, PROTOCOL_ERROR, 'trailers without END_STREAM');
      for (let i = 0; i < f.length; i += 2) {
        const n = f[i];
        if (n === 'grpc-status') s.grpcStatus = f[i + 1];
        else if (n === 'grpc-message') s.grpcMessage = f[i + 1];
      }
    }
    if (endStream) this.complete(s);
  }

  /** The server ended the stream: success only with HTTP 200, grpc-status 0 and one complete gRPC message. */
  private complete(s: Stream): void {
    if (s.status !== 200) {
      const msg = s.grpcStatus !== undefined ? grpcMessage(s.grpcMessage) : `HTTP status ${s.status}`;
      return this.finish(s, `grpc-status ${s.grpcStatus ?? 'none'} ${msg}`, true);
    }
    if (s.grpcStatus !== '0') return this.finish(s, `grpc-status ${s.grpcStatus ?? 'none'} ${grpcMessage(s.grpcMessage)}`, true);
    if (s.prefixSeen < 5 || s.bodyLen !== 5 + s.msgLen) {
      return this.finish(
        s,
        `grpc-status 0 but ${s.bodyLen === 0 ? 'no response message' : `an incomplete response message (${s.bodyLen} bytes)`}`,
        true,
      );
    }
    this.finish(s, undefined, true);
  }

  private streamError(s: Stream, code: number, msg: string): void {
    this.push(rstStream(s.id, code));
    s.localClosed = true; // nothing more to send on it
    this.finish(s, `stream error ${errorName(code)}: ${msg}`, false);
  }

  /**
   * Ends a stream and reports the call. `cancelIfSending`: the server finished before our body was
   * all sent, so we abandon the rest with RST_STREAM(CANCEL).
   */
  private finish(s: Stream, err: string | undefined, cancelIfSending: boolean): void {
    if (this.streams.get(s.id) !== s) return;
    this.streams.delete(s.id);
    this.active--;
    if (!s.localClosed) {
      s.localClosed = true;
      if (cancelIfSending) this.push(rstStream(s.id, CANCEL));
    }
    if (this.queueHead < this.queue.length) this.pumpQueue();
    else if (this.draining) this.maybeClose();
    let body: Buffer | undefined;
    if (err === undefined && s.chunks) body = s.chunks.length === 1 ? s.chunks[0] : Buffer.concat(s.chunks);
    s.done(err, body);
  }

  private onSettings(flags: number, sid: number, buf: Buffer, start: number, end: number): void {
    if (sid !== 0) return this.connError(PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & FLAG_ACK) {
      if (end !== start) return this.connError(FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if ((end - start) % 6 !== 0) return this.connError(FRAME_SIZE_ERROR, 'SETTINGS of the wrong size');
    let windowDelta = 0;
    for (let p = start; p < end; p += 6) {
      const id = buf.readUInt16BE(p);
      const v = buf.readUInt32BE(p + 2);
      switch (id) {
        case SETTINGS_HEADER_TABLE_SIZE:
          break; // our encoder never indexes (table size 0 from the first block on)
        case SETTINGS_ENABLE_PUSH:
          if (v > 1) return this.connError(PROTOCOL_ERROR, 'SETTINGS_ENABLE_PUSH not 0 or 1');
          break;
        case SETTINGS_MAX_CONCURRENT_STREAMS:
          this.peerMaxStreams = v;
          break;
        case SETTINGS_INITIAL_WINDOW_SIZE:
          if (v > MAX_WINDOW) return this.connError(FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1');
          windowDelta += v - this.peerInitialWindow;
          this.peerInitialWindow = v;
          break;
        case SETTINGS_MAX_FRAME_SIZE:
          if (v < 16384 || v > 16777215) return this.connError(PROTOCOL_ERROR, 'SETTINGS_MAX_FRAME_SIZE out of range');
          this.peerMaxFrame = v;
          break;
        default:
          break;
      }
    }
    this.push(frame(SETTINGS, FLAG_ACK, 0));
    if (windowDelta !== 0) {
      for (const s of this.streams.values()) {
        s.sendWindow += windowDelta;
        if (s.sendWindow > MAX_WINDOW) return this.connError(FLOW_CONTROL_ERROR, 'stream window above 2^31-1 after SETTINGS');
      }
    }
    const first = !this.ready;
    this.ready = true;
    if (first) this.client.onReady(this);
    this.resumeBlocked();
    this.pumpQueue();
  }

  private onWindowUpdate(sid: number, buf: Buffer, start: number, end: number): void {
    if (end - start !== 4) return this.connError(FRAME_SIZE_ERROR, 'WINDOW_UPDATE of the wrong size');
    const inc = buf.readUInt32BE(start) & 0x7fffffff;
    if (sid === 0) {
      if (inc === 0) return this.connError(PROTOCOL_ERROR, 'WINDOW_UPDATE with increment 0');
      this.connSendWindow += inc;
      if (this.connSendWindow > MAX_WINDOW) return this.connError(FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
    } else {
      const s = this.streams.get(sid);
      if (!s) {
        if (this.isIdle(sid)) return this.connError(PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream');
        return;
      }
      if (inc === 0) return this.streamError(s, PROTOCOL_ERROR, 'WINDOW_UPDATE with increment 0');
      s.sendWindow += inc;
      if (s.sendWindow > MAX_WINDOW) return this.streamError(s, FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
    }
    this.resumeBlocked();
  }

  private onGoaway(lastId: number, code: number, debug: string): void {
    const why = `GOAWAY ${errorName(code)}${debug ? ` (${debug})` : ''}`;
    this.error ??= why;
    this.drain();
    for (const s of [...this.streams.values()]) {
      if (s.id > lastId) {
        s.localClosed = true; // the server will not process it: nothing to cancel
        this.finish(s, `${why}: stream ${s.id} not processed`, false);
      }
    }
    this.maybeClose();
  }

  /** A connection error: GOAWAY with the code, close, fail every call here. */
  private connError(code: number, msg: string): void {
    if (this.dead) return;
    this.error = `connection error ${errorName(code)}: ${msg}`;
    if (!this.ended) {
      this.push(this.goaway(code));
      this.flush();
      this.end();
    }
    this.onClose();
  }

  private onClose(): void {
    if (this.dead) return;
    this.dead = true;
    this.draining = true;
    this.client.detach(this);
    const why = this.error ?? 'connection closed';
    const q = this.takeQueue();
    for (const s of [...this.streams.values()]) this.finish(s, why, false);
    this.client.closed(this);
    if (q.length === 0) return;
    // Calls that never started: retry them on a new connection if this one worked (it was
    // drained by GOAWAY or closed under us), fail them if it never got going.
    if (this.ready && !this.client.isClosing) this.client.requeue(q);
    else for (const s of q) s.done(why, undefined);
  }

  /** Graceful close: no new streams; GOAWAY and end once the streams here are done. */
  close(): void {
    this.drain();
  }

  destroy(): void {
    this.sock.destroy();
  }
}

function windowUpdate(sid: number, inc: number): Buffer {
  const b = Buffer.allocUnsafe(13);
  frameHeader(b, 0, 4, WINDOW_UPDATE, 0, sid);
  b.writeUInt32BE(inc, 9);
  return b;
}

function rstStream(sid: number, code: number): Buffer {
  const b = Buffer.allocUnsafe(13);
  frameHeader(b, 0, 4, RST_STREAM, 0, sid);
  b.writeUInt32BE(code, 9);
  return b;
}

/**
 * A client for one origin, keeping one connection open at a time (the previous one drains while
 * its streams finish). Calls never complete synchronously.
 */
export class H2Client {
  readonly maxStreamId: number;
  private conn: Conn | undefined;
  private readonly conns = new Set<Conn>();
  private closing = false;
  private readyWaiters: (() => void)[] = [];
  private closeWaiters: (() => void)[] = [];

  constructor(readonly options: H2ClientOptions) {
    this.maxStreamId = options.maxStreamId ?? 0x7fffffff - 0x10000;
  }

  /** A connection is established and the server's SETTINGS have arrived. */
  get isOpen(): boolean {
    return this.conn !== undefined && this.conn.ready && !this.conn.dead;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** Number of sockets still open (the current one and any draining ones). */
  get connections(): number {
    return this.conns.size;
  }

  /** Opens the connection now (otherwise the first call does); resolves once it is ready. */
  connect(): Promise<void> {
    const c = this.current();
    if (c.ready) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** Starts a call. `keepBody`: hand the response body (the gRPC frame) to the callback. */
  call(req: PreparedRequest, keepBody: boolean, done: CallCallback): void {
    if (this.closing) {
      process.nextTick(done, 'client closed', undefined);
      return;
    }
    this.current().enqueue(new Stream(req, keepBody, done));
  }

  private current(): Conn {
    let c = this.conn;
    if (!c || c.draining || c.dead) {
      c = new Conn(this);
      this.conn = c;
      this.conns.add(c);
    }
    return c;
  }

  /** @internal */
  detach(c: Conn): void {
    if (this.conn === c) this.conn = undefined;
  }

  /** @internal calls that never started on a connection that went away. */
  requeue(q: Stream[]): void {
    if (this.closing) {
      for (const s of q) process.nextTick(s.done, 'client closed', undefined);
      return;
    }
    const c = this.current();
    for (const s of q) c.enqueue(s);
  }

  /** @internal */
  onReady(c: Conn): void {
    if (c !== this.conn) return;
    const w = this.readyWaiters;
    this.readyWaiters = [];
    for (const f of w) f();
  }

  /** @internal */
  closed(c: Conn): void {
    this.conns.delete(c);
    if (c === this.conn) this.conn = undefined;
    if (this.readyWaiters.length && !this.closing && !this.conn) {
      // connect() waiters: the attempt failed; they resolve and isOpen says false.
      const w = this.readyWaiters;
      this.readyWaiters = [];
      for (const f of w) f();
    }
    if (this.conns.size === 0 && this.closeWaiters.length) {
      const w = this.closeWaiters;
      this.closeWaiters = [];
      for (const f of w) f();
    }
  }

  /** Lets the calls in flight finish, then closes (GOAWAY NO_ERROR); later calls fail. */
  close(): Promise<void> {
    this.closing = true;
    this.conn = undefined;
    if (this.conns.size === 0) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    for (const c of [...this.conns]) c.close();
    return p;
  }

  /** Closes every socket at once; calls in flight fail. */
  destroy(): void {
    this.closing = true;
    this.conn = undefined;
    for (const c of [...this.conns]) c.destroy();
  }
}
