import type { Duplex } from 'node:stream';
import { requestBudget, type BudgetMember } from './budget.js';
import { HpackDecoder, HpackError, encodeHeaders, type HeaderList } from './hpack.js';

/**
 * The server side of one HTTP/2 connection (RFC 9113), for request/response exchanges whose
 * request is read whole before it is answered (gRPC unary calls). Written for meshca's hot path,
 * where node:http2 costs several times its CPU per request. What it implements: the preface and SETTINGS exchange, HPACK with a dynamic table, CONTINUATION,
 * padding, flow control both ways (answers wait for WINDOW_UPDATE), PING, RST_STREAM,
 * GOAWAY both ways with graceful shutdown, MAX_CONCURRENT_STREAMS, and the RFC's connection and
 * stream errors. Limits against abuse: header list size, header block
 * fragments and bytes (CONTINUATION floods), request body size, buffered request bytes per
 * connection and for the whole process (budget.ts, which sheds the oldest unauthenticated
 * requests), answer bytes waiting for a window the peer never opens, bytes queued for a peer that
 * does not read, floods of resets, SETTINGS and PINGs, and deadlines for the handshake, a header
 * block, a request, a flow-control stall and an idle connection.
 */

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  PRIORITY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;
const END_STREAM = 0x1;
const ACK = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;

export const H2_ERROR = {
  NO_ERROR: 0,
  PROTOCOL_ERROR: 1,
  INTERNAL_ERROR: 2,
  FLOW_CONTROL_ERROR: 3,
  STREAM_CLOSED: 5,
  FRAME_SIZE_ERROR: 6,
  REFUSED_STREAM: 7,
  CANCEL: 8,
  COMPRESSION_ERROR: 9,
  ENHANCE_YOUR_CALM: 11,
} as const;

const SETTING = {
  HEADER_TABLE_SIZE: 1,
  ENABLE_PUSH: 2,
  MAX_CONCURRENT_STREAMS: 3,
  INITIAL_WINDOW_SIZE: 4,
  MAX_FRAME_SIZE: 5,
  MAX_HEADER_LIST_SIZE: 6,
} as const;

const DEFAULT_WINDOW = 65_535;
const MAX_WINDOW = 2 ** 31 - 1;
/** Our SETTINGS_MAX_FRAME_SIZE: the protocol's default, which every peer supports. */
const MAX_FRAME = 16_384;

export interface ConnectionLimits {
  maxConcurrentStreams: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE we announce and enforce (431-like refusal per stream). */
  maxHeaderListSize: number;
  /** HEADERS plus CONTINUATION frames one header block may take, empty ones included (else GOAWAY ENHANCE_YOUR_CALM). */
  maxHeaderFragments: number;
  /** Largest request body a stream may send; beyond it the stream gets onTooLarge. */
  maxBodyBytes: number;
  /**
   * Request bytes (header blocks being assembled, decoded headers, bodies) held for the
   * connection's streams before it is cut (ENHANCE_YOUR_CALM). The process-wide budget is budget.ts.
   */
  maxBufferedBytes: number;
  /** Bytes queued for a peer that does not read before the connection is cut. */
  maxQueuedOutput: number;
  /** Answer bytes waiting for flow-control window before the connection is cut (ENHANCE_YOUR_CALM). */
  maxPendingOutput: number;
  /** RST_STREAMs from the peer per second tolerated before GOAWAY ENHANCE_YOUR_CALM. */
  maxResetsPerSecond: number;
  /** Entries one SETTINGS frame may carry (else GOAWAY ENHANCE_YOUR_CALM). */
  maxSettingsEntries: number;
  /** SETTINGS frames (not ACKs) per second tolerated before GOAWAY ENHANCE_YOUR_CALM. */
  maxSettingsPerSecond: number;
  /** PINGs (not ACKs) per second tolerated before GOAWAY ENHANCE_YOUR_CALM. */
  maxPingsPerSecond: number;
  /** Time from accept to the client's preface and SETTINGS before the connection is cut. */
  handshakeTimeoutMs: number;
  /** Time a header block may stay unfinished (waiting for CONTINUATION) before the connection is cut. */
  headerBlockTimeoutMs: number;
  /** Time a request (headers and body) may take to arrive before its stream is reset (CANCEL). */
  requestTimeoutMs: number;
  /** Time an answer may wait for flow-control window before its stream is reset (CANCEL). */
  flowControlTimeoutMs: number;
  /** Time a connection may stay without streams before it is shut down gracefully. */
  idleTimeoutMs: number;
}

export const DEFAULT_LIMITS: ConnectionLimits = {
  maxConcurrentStreams: 1000,
  // A CA request's headers are a few hundred bytes plus a token of one or two KB.
  maxHeaderListSize: 16 * 1024,
  maxHeaderFragments: 64,
  maxBodyBytes: 4 * 1024 * 1024 + 5,
  maxBufferedBytes: 16 * 1024 * 1024,
  maxQueuedOutput: 16 * 1024 * 1024,
  maxPendingOutput: 8 * 1024 * 1024,
  maxResetsPerSecond: 1000,
  maxSettingsEntries: 32,
  maxSettingsPerSecond: 100,
  maxPingsPerSecond: 1000,
  handshakeTimeoutMs: 5_000,
  headerBlockTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  flowControlTimeoutMs: 30_000,
  idleTimeoutMs: 5 * 60_000,
};

/** A request stream handed to the application once its headers (and body, at END_STREAM) are in. */
export interface H2Request {
  readonly id: number;
  readonly headers: HeaderList;
  readonly body: Buffer;
  /** True once the peer reset the stream or the connection closed: answers are dropped. */
  readonly closed: boolean;
}

export interface H2Handlers {
  /** A complete request (END_STREAM seen). Answer with respond(). */
  onRequest(conn: H2Connection, req: H2Request): void;
  /** The request body passed maxBodyBytes: answer (e.g. a trailers-only error) and the stream is reset. */
  onTooLarge(conn: H2Connection, req: H2Request): void;
  /** The header list passed maxHeaderListSize. */
  onHeadersTooLarge(conn: H2Connection, req: H2Request): void;
  onClose?(conn: H2Connection): void;
}

interface Stream extends H2Request {
  id: number;
  headers: HeaderList;
  body: Buffer;
  chunks: Buffer[] | undefined;
  bodyLen: number;
  closed: boolean;
  /** The peer has sent END_STREAM. */
  remoteDone: boolean;
  /** We have sent END_STREAM (or reset the stream). */
  localDone: boolean;
  tooLarge: boolean;
  sendWindow: number;
  /** Bytes received and not yet given back with a stream WINDOW_UPDATE. */
  unacked: number;
  /** DATA (and the trailers after it) waiting for flow-control window. */
  pending: Buffer | undefined;
  pendingTrailers: Buffer | undefined;
  /** Arrival order across the process (budget.ts sheds the oldest first). */
  seq: number;
  /** When the stream opened, on the budget's coarse clock. */
  born: number;
  /** Request bytes charged to the connection and the process budget for this stream. */
  charged: number;
  /** Answer bytes counted in the connection's pendingOut. */
  accounted: number;
  /** When the answer started waiting for window. */
  blockedAt: number;
}

interface HeaderBlock {
  id: number;
  flags: number;
  parts: Buffer[];
  size: number;
  fragments: number;
  seq: number;
  born: number;
}

class ConnectionError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function frameHeader(out: Buffer, at: number, len: number, type: number, flags: number, id: number): void {
  out[at] = len >>> 16;
  out[at + 1] = (len >>> 8) & 0xff;
  out[at + 2] = len & 0xff;
  out[at + 3] = type;
  out[at + 4] = flags;
  out.writeUInt32BE(id, at + 5);
}

function frame(type: number, flags: number, id: number, payload?: Buffer): Buffer {
  const len = payload ? payload.length : 0;
  const out = Buffer.allocUnsafe(9 + len);
  frameHeader(out, 0, len, type, flags, id);
  if (payload) payload.copy(out, 9);
  return out;
}

function u32(v: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

export class H2Connection implements BudgetMember {
  private readonly decoder: HpackDecoder;
  private readonly streams = new Map<number, Stream>();
  private buf: Buffer = Buffer.alloc(0);
  private prefaceSeen = false;
  private settingsSeen = false;
  private lastStreamId = 0;
  /** Stream id and frames of a header block still waiting for CONTINUATION. */
  private headerBlock: HeaderBlock | undefined;
  /** Bytes of headerBlock charged to the budgets. */
  private headerBlockCharged = 0;
  private connSendWindow = DEFAULT_WINDOW;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerMaxFrame = MAX_FRAME;
  private connUnacked = 0;
  private buffered = 0;
  private out: Buffer[] = [];
  private flushScheduled = false;
  /** Streams with answers waiting for window, in order. */
  private blocked: Stream[] = [];
  private goawaySent = false;
  /** A connection error was sent: nothing more is read. */
  private dead = false;
  private closing = false;
  private closed = false;
  private resets = 0;
  private resetWindowStart = 0;
  private settingsCount = 0;
  private settingsWindowStart = 0;
  private pings = 0;
  private pingWindowStart = 0;
  /** Answer bytes of blocked streams waiting for window. */
  private pendingOut = 0;
  private readonly bornAt: number;
  /** Streams opened so far, and as seen by the last sweep (idle detection without a clock read per stream). */
  private streamsOpened = 0;
  private sweptStreamsOpened = 0;
  private idleSince: number;
  /** The candidate oldest() found for shedOldest(): a stream, or the header block. */
  private shedTarget: Stream | HeaderBlock | undefined;
  /**
   * The peer's verified certificate, read by the application once per connection (null: none).
   * Streams of a connection without one are shed first when the process budget runs out.
   */
  peerCertDer: Buffer | null | undefined;
  readonly peer: string;

  constructor(
    readonly socket: Duplex & { remoteAddress?: string; remotePort?: number; writableLength: number; destroyed: boolean },
    private readonly handlers: H2Handlers,
    private readonly limits: ConnectionLimits = DEFAULT_LIMITS,
  ) {
    this.peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    requestBudget.join(this);
    this.bornAt = this.idleSince = requestBudget.now;
    this.decoder = new HpackDecoder(4096);
    const settings = Buffer.allocUnsafe(18);
    settings.writeUInt16BE(SETTING.MAX_CONCURRENT_STREAMS, 0);
    settings.writeUInt32BE(limits.maxConcurrentStreams, 2);
    settings.writeUInt16BE(SETTING.MAX_HEADER_LIST_SIZE, 6);
    settings.writeUInt32BE(limits.maxHeaderListSize, 8);
    // Request bodies are read whole before any answer; a 1 MiB stream window lets a client send
    // a typical request (and most large ones) without waiting for WINDOW_UPDATE.
    settings.writeUInt16BE(SETTING.INITIAL_WINDOW_SIZE, 12);
    settings.writeUInt32BE(1 << 20, 14);
    this.queue(frame(FRAME.SETTINGS, 0, 0, settings));
    // The connection window likewise (it starts at 65,535 whatever SETTINGS say).
    this.queue(frame(FRAME.WINDOW_UPDATE, 0, 0, u32((16 << 20) - DEFAULT_WINDOW)));
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', () => this.onSocketClosed());
    socket.on('close', () => this.onSocketClosed());
  }

  /** Streams open now (for graceful shutdown and tests). */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Request bytes held for this connection (charged to the process budget too). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Answer bytes waiting for the peer's flow-control window. */
  get pendingOutputBytes(): number {
    return this.pendingOut;
  }

  // ---- budget and deadlines (budget.ts) -----------------------------------------------------

  /** Charges n request bytes to the connection (cut past its limit) and to the process budget. */
  private hold(s: Stream | undefined, n: number): void {
    if (this.buffered + n > this.limits.maxBufferedBytes)
      throw new ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'too many request bytes buffered');
    this.buffered += n;
    if (s) s.charged += n;
    else this.headerBlockCharged += n;
    // May shed other connections' requests, or this one's (the caller checks).
    requestBudget.charge(n);
  }

  private unhold(n: number): void {
    this.buffered -= n;
    requestBudget.release(n);
  }

  oldest(authenticated: boolean): number {
    this.shedTarget = undefined;
    if (this.dead || this.closed || (!authenticated && this.peerCertDer)) return Infinity;
    for (const s of this.streams.values()) {
      if (!s.remoteDone && s.charged > 0) {
        this.shedTarget = s;
        break;
      }
    }
    const hb = this.headerBlock;
    if (hb && this.headerBlockCharged > 0 && (!this.shedTarget || hb.seq < this.shedTarget.seq)) this.shedTarget = hb;
    return this.shedTarget ? this.shedTarget.seq : Infinity;
  }

  shedOldest(): void {
    const t = this.shedTarget;
    this.shedTarget = undefined;
    if (!t) return;
    // A half-received header block cannot be dropped alone: the HPACK context would be lost.
    if (t === this.headerBlock)
      return this.connectionError(new ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'request memory budget exceeded'));
    this.resetStream(t.id, H2_ERROR.REFUSED_STREAM);
  }

  sweep(now: number): void {
    if (this.closed) return;
    const l = this.limits;
    if (!this.settingsSeen && !this.dead && now - this.bornAt > l.handshakeTimeoutMs)
      return this.timedOut('no connection preface and SETTINGS in time');
    if (this.headerBlock && now - this.headerBlock.born > l.headerBlockTimeoutMs) return this.timedOut('header block not finished in time');
    if (this.dead) return;
    for (const s of this.streams.values()) {
      // Deleting the current entry while iterating a Map is safe.
      if (!s.remoteDone && now - s.born > l.requestTimeoutMs) this.resetStream(s.id, H2_ERROR.CANCEL);
      else if (s.pending && now - s.blockedAt > l.flowControlTimeoutMs) this.resetStream(s.id, H2_ERROR.CANCEL);
    }
    if (this.streams.size > 0 || this.streamsOpened !== this.sweptStreamsOpened) {
      this.sweptStreamsOpened = this.streamsOpened;
      this.idleSince = now;
    } else if (now - this.idleSince > l.idleTimeoutMs) {
      this.shutdown();
    }
  }

  private timedOut(why: string): void {
    this.connectionError(new ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, why));
  }

  /** Releases everything held for the streams and the header block (connection error or close). */
  private dropAll(): void {
    for (const s of this.streams.values()) {
      s.closed = true;
      if (s.charged) this.unhold(s.charged);
      s.charged = 0;
      s.chunks = undefined;
    }
    this.streams.clear();
    if (this.headerBlockCharged) this.unhold(this.headerBlockCharged);
    this.headerBlockCharged = 0;
    this.headerBlock = undefined;
    this.blocked = [];
    this.pendingOut = 0;
  }

  // ---- output -------------------------------------------------------------------------------

  private queue(b: Buffer): void {
    this.out.push(b);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Everything answered in this turn of the event loop goes out in one write (one TLS record
      // train) instead of one write per frame.
      queueMicrotask(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.out.length === 0 || this.closed || this.socket.destroyed) {
      this.out = [];
      return;
    }
    if (this.connUnacked > 0) {
      this.out.push(frame(FRAME.WINDOW_UPDATE, 0, 0, u32(this.connUnacked)));
      this.connUnacked = 0;
    }
    const chunk = this.out.length === 1 ? this.out[0] : Buffer.concat(this.out);
    this.out = [];
    if (chunk.length > 0) this.socket.write(chunk);
    if (this.socket.writableLength > this.limits.maxQueuedOutput) {
      // The peer does not read what it asks for (a PING or reset flood, or a stalled client).
      this.socket.destroy();
    }
    if (this.closing && this.streams.size === 0) this.socket.end();
  }

  /**
   * Answers a request: response headers, an optional body, and trailers (or headers alone with
   * END_STREAM when trailers is undefined and body is empty: a trailers-only answer).
   */
  respond(
    req: H2Request,
    headers: ReadonlyArray<readonly [string, string]>,
    body?: Buffer,
    trailers?: ReadonlyArray<readonly [string, string]>,
  ): void {
    const s = this.streams.get(req.id);
    if (!s || s !== req || s.localDone || this.closed) return;
    const endOnHeaders = !body?.length && !trailers;
    this.sendHeaders(s.id, encodeHeaders(headers), endOnHeaders);
    if (endOnHeaders) return this.finish(s);
    const trailerBlock = trailers ? encodeHeaders(trailers) : undefined;
    if (body?.length) {
      s.pending = body;
      s.pendingTrailers = trailerBlock;
      if (!this.drainStream(s)) {
        this.blocked.push(s);
        s.blockedAt = requestBudget.now;
        this.settlePending(s);
        // A peer that opens streams and never opens its window would pin every answer.
        if (this.pendingOut > this.limits.maxPendingOutput)
          this.connectionError(new ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'answers stalled on flow control'));
      }
      return;
    }
    // No body: trailers right away.
    this.sendHeaders(s.id, trailerBlock ?? encodeHeaders([]), true);
    this.finish(s);
  }

  /** Sends a header block, split into CONTINUATION frames when it exceeds the peer's frame size. */
  private sendHeaders(id: number, block: Buffer, endStream: boolean): void {
    const max = this.peerMaxFrame;
    if (block.length <= max) {
      const f = Buffer.allocUnsafe(9 + block.length);
      frameHeader(f, 0, block.length, FRAME.HEADERS, END_HEADERS | (endStream ? END_STREAM : 0), id);
      block.copy(f, 9);
      this.queue(f);
      return;
    }
    for (let at = 0; at < block.length; at += max) {
      const part = block.subarray(at, Math.min(block.length, at + max));
      const last = at + max >= block.length;
      const type = at === 0 ? FRAME.HEADERS : FRAME.CONTINUATION;
      const flags = (last ? END_HEADERS : 0) | (at === 0 && endStream ? END_STREAM : 0);
      this.queue(frame(type, flags, id, part));
    }
  }

  /** Sends as much pending DATA as the windows allow; true when the stream's answer is complete. */
  private drainStream(s: Stream): boolean {
    while (s.pending && s.pending.length > 0) {
      const room = Math.min(this.connSendWindow, s.sendWindow, this.peerMaxFrame);
      if (room <= 0) return false;
      const n = Math.min(room, s.pending.length);
      const part = s.pending.subarray(0, n);
      s.pending = n === s.pending.length ? undefined : s.pending.subarray(n);
      this.connSendWindow -= n;
      s.sendWindow -= n;
      const last = s.pending === undefined && !s.pendingTrailers;
      const f = Buffer.allocUnsafe(9 + n);
      frameHeader(f, 0, n, FRAME.DATA, last ? END_STREAM : 0, s.id);
      part.copy(f, 9);
      this.queue(f);
    }
    s.pending = undefined;
    if (s.pendingTrailers) {
      this.sendHeaders(s.id, s.pendingTrailers, true);
      s.pendingTrailers = undefined;
    }
    this.finish(s);
    return true;
  }

  private drainBlocked(): void {
    if (this.blocked.length === 0) return;
    const still: Stream[] = [];
    for (const s of this.blocked) {
      if (s.localDone || s.closed) continue;
      if (!this.drainStream(s)) {
        still.push(s);
        this.settlePending(s);
      }
    }
    this.blocked = still;
  }

  /** Brings pendingOut in step with what the stream still has to send. */
  private settlePending(s: Stream): void {
    const left = (s.pending?.length ?? 0) + (s.pendingTrailers?.length ?? 0);
    this.pendingOut += left - s.accounted;
    s.accounted = left;
  }

  /** Our side of the stream is done; it is forgotten once the peer's side is too. */
  private finish(s: Stream): void {
    s.localDone = true;
    if (s.remoteDone) this.forget(s);
    else {
      // We answered before the request ended (an error): RFC 9113 8.1 lets us reset it with NO_ERROR.
      this.queue(frame(FRAME.RST_STREAM, 0, s.id, u32(H2_ERROR.NO_ERROR)));
      this.forget(s);
    }
  }

  private forget(s: Stream): void {
    s.closed = true;
    if (s.charged) this.unhold(s.charged);
    s.charged = 0;
    if (s.accounted) this.pendingOut -= s.accounted;
    s.accounted = 0;
    s.pending = undefined;
    s.pendingTrailers = undefined;
    s.chunks = undefined;
    this.streams.delete(s.id);
    if (this.closing && this.streams.size === 0) this.queue(Buffer.alloc(0));
  }

  resetStream(id: number, code: number): void {
    const s = this.streams.get(id);
    this.queue(frame(FRAME.RST_STREAM, 0, id, u32(code)));
    if (s) {
      s.localDone = true;
      this.forget(s);
    }
  }

  /** Graceful shutdown: GOAWAY with the last stream we accept, answer what is open, then close. */
  shutdown(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    this.sendGoaway(H2_ERROR.NO_ERROR, '');
    if (this.streams.size === 0) this.queue(Buffer.alloc(0));
  }

  destroy(): void {
    this.socket.destroy();
  }

  private sendGoaway(code: number, debug: string): void {
    if (this.goawaySent) return;
    this.goawaySent = true;
    const d = Buffer.from(debug);
    const p = Buffer.allocUnsafe(8 + d.length);
    p.writeUInt32BE(this.lastStreamId, 0);
    p.writeUInt32BE(code, 4);
    d.copy(p, 8);
    this.queue(frame(FRAME.GOAWAY, 0, 0, p));
  }

  private connectionError(e: ConnectionError): void {
    this.dead = true;
    this.sendGoaway(e.code, e.message);
    this.closing = true;
    this.dropAll();
    this.flush();
    this.socket.end();
    // A peer that keeps the socket open after GOAWAY is cut shortly after.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private onSocketClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.dropAll();
    requestBudget.leave(this);
    this.handlers.onClose?.(this);
  }

  // ---- input --------------------------------------------------------------------------------

  private onData(d: Buffer): void {
    if (this.closed || this.dead) return;
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    try {
      this.parse();
    } catch (e) {
      if (e instanceof ConnectionError) return this.connectionError(e);
      if (e instanceof HpackError) return this.connectionError(new ConnectionError(H2_ERROR.COMPRESSION_ERROR, e.message));
      throw e;
    }
  }

  private parse(): void {
    const buf = this.buf;
    let p = 0;
    if (!this.prefaceSeen) {
      const n = Math.min(buf.length, PREFACE.length);
      if (buf.compare(PREFACE, 0, n, 0, n) !== 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'bad connection preface');
      if (buf.length < PREFACE.length) return;
      this.prefaceSeen = true;
      p = PREFACE.length;
    }
    while (buf.length - p >= 9 && !this.closed && !this.dead) {
      const len = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2];
      if (len > MAX_FRAME) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, `frame of ${len} octets exceeds ${MAX_FRAME}`);
      if (buf.length - p - 9 < len) break;
      const type = buf[p + 3];
      const flags = buf[p + 4];
      const id = buf.readUInt32BE(p + 5) & 0x7fffffff;
      const start = p + 9;
      p = start + len;
      this.onFrame(type, flags, id, buf, start, p);
    }
    this.buf = p >= buf.length ? Buffer.alloc(0) : buf.subarray(p);
    // Do not pin a large read buffer for a small leftover.
    if (this.buf.length > 0 && this.buf.length < 4096 && this.buf.buffer.byteLength > 65536) this.buf = Buffer.from(this.buf);
  }

  private onFrame(type: number, flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (!this.settingsSeen) {
      if (type !== FRAME.SETTINGS || flags & ACK) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'the first frame must be SETTINGS');
      this.settingsSeen = true;
    }
    if (this.headerBlock && type !== FRAME.CONTINUATION)
      throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'header block interrupted before END_HEADERS');
    switch (type) {
      case FRAME.DATA:
        return this.onDataFrame(flags, id, buf, start, end);
      case FRAME.HEADERS:
        return this.onHeadersFrame(flags, id, buf, start, end);
      case FRAME.CONTINUATION:
        return this.onContinuation(flags, id, buf, start, end);
      case FRAME.PRIORITY:
        if (id === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (end - start !== 5) this.resetStream(id, H2_ERROR.FRAME_SIZE_ERROR);
        return;
      case FRAME.RST_STREAM:
        return this.onReset(id, buf, start, end);
      case FRAME.SETTINGS:
        return this.onSettings(flags, id, buf, start, end);
      case FRAME.PUSH_PROMISE:
        throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'a client cannot push');
      case FRAME.PING:
        if (id !== 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'PING on a stream');
        if (end - start !== 8) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'PING must carry 8 octets');
        if (flags & ACK) return;
        if (this.rateExceeded('ping', this.limits.maxPingsPerSecond))
          throw new ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'too many PINGs');
        this.queue(frame(FRAME.PING, ACK, 0, buf.subarray(start, end)));
        return;
      case FRAME.GOAWAY:
        if (id !== 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'GOAWAY on a stream');
        // The client will open no more streams; what is open is still answered.
        return;
      case FRAME.WINDOW_UPDATE:
        return this.onWindowUpdate(id, buf, start, end);
      default:
        return; // unknown frame types are ignored (RFC 9113 4.1)
    }
  }

  /** Payload bounds without padding. */
  private unpad(flags: number, buf: Buffer, start: number, end: number): [number, number] {
    if (!(flags & PADDED)) return [start, end];
    if (end - start < 1) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'padded frame without a pad length');
    const pad = buf[start];
    if (pad >= end - start) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'padding exceeds the frame');
    return [start + 1, end - pad];
  }

  private onHeadersFrame(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (id === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let [s, e] = this.unpad(flags, buf, start, end);
    if (flags & PRIORITY_FLAG) {
      if (e - s < 5) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'HEADERS too short for its priority');
      s += 5;
    }
    const part = buf.subarray(s, e);
    if (flags & END_HEADERS) return this.onHeaderBlock(id, flags, part);
    const hb: HeaderBlock = {
      id,
      flags,
      parts: [],
      size: part.length,
      fragments: 1,
      seq: requestBudget.nextSeq(),
      born: requestBudget.now,
    };
    this.headerBlock = hb;
    this.hold(undefined, part.length);
    if (this.headerBlock === hb) hb.parts.push(Buffer.from(part));
  }

  private onContinuation(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    const hb = this.headerBlock;
    if (!hb || hb.id !== id) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'CONTINUATION without a header block');
    hb.size += end - start;
    // A header block far beyond the list limit, or in many pieces (empty ones cost the parser as
    // much), is an attack (CONTINUATION flood), not a request.
    if (hb.size > this.limits.maxHeaderListSize * 2 + 16_384)
      throw new ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'header block too large');
    if (++hb.fragments > this.limits.maxHeaderFragments)
      throw new ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'header block in too many fragments');
    if (end > start) {
      this.hold(undefined, end - start);
      if (this.headerBlock !== hb) return; // shed by the process budget
      hb.parts.push(Buffer.from(buf.subarray(start, end)));
    }
    if (!(flags & END_HEADERS)) return;
    this.headerBlock = undefined;
    this.unhold(this.headerBlockCharged);
    this.headerBlockCharged = 0;
    this.onHeaderBlock(id, hb.flags, hb.parts.length === 1 ? hb.parts[0] : Buffer.concat(hb.parts));
  }

  private onHeaderBlock(id: number, flags: number, block: Buffer): void {
    // Decoded whatever happens to the stream: the dynamic table is the connection's.
    const { headers, tooLarge, size } = this.decoder.decode(block, 0, block.length, this.limits.maxHeaderListSize);
    const existing = this.streams.get(id);
    if (existing) {
      // Trailers from the client: they must end the stream.
      if (existing.remoteDone || !(flags & END_STREAM)) return this.resetStream(id, H2_ERROR.PROTOCOL_ERROR);
      existing.remoteDone = true;
      return this.complete(existing);
    }
    if (id <= this.lastStreamId || id % 2 === 0) {
      if (id % 2 === 0 || id > this.lastStreamId)
        throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, `stream ${id} is not a new client stream`);
      return; // a stream we already closed (reset): ignore
    }
    this.lastStreamId = id;
    if (this.closing) return this.resetStream(id, H2_ERROR.REFUSED_STREAM);
    if (this.streams.size >= this.limits.maxConcurrentStreams) return this.resetStream(id, H2_ERROR.REFUSED_STREAM);
    const s: Stream = {
      id,
      headers,
      body: EMPTY,
      chunks: undefined,
      bodyLen: 0,
      closed: false,
      remoteDone: (flags & END_STREAM) !== 0,
      localDone: false,
      tooLarge: false,
      sendWindow: this.peerInitialWindow,
      unacked: 0,
      pending: undefined,
      pendingTrailers: undefined,
      seq: requestBudget.nextSeq(),
      born: requestBudget.now,
      charged: 0,
      accounted: 0,
      blockedAt: 0,
    };
    this.streams.set(id, s);
    this.streamsOpened++;
    if (tooLarge) {
      s.tooLarge = true;
      this.handlers.onHeadersTooLarge(this, s);
      if (!s.localDone) this.resetStream(id, H2_ERROR.REFUSED_STREAM);
      return;
    }
    // The decoded list is held until the stream is forgotten.
    this.hold(s, size);
    if (s.closed) return; // shed by the process budget
    if (s.remoteDone) this.complete(s);
  }

  private onDataFrame(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (id === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'DATA on stream 0');
    // Flow control counts the whole frame, padding included, whatever becomes of the stream.
    this.connUnacked += end - start;
    const [s0, e0] = this.unpad(flags, buf, start, end);
    const s = this.streams.get(id);
    if (!s) {
      if (id > this.lastStreamId) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, `DATA on idle stream ${id}`);
      return this.queueWindowFlush();
    }
    if (s.remoteDone) return this.resetStream(id, H2_ERROR.STREAM_CLOSED);
    const n = e0 - s0;
    if (!s.tooLarge && n > 0) {
      if (s.bodyLen + n > this.limits.maxBodyBytes) {
        s.tooLarge = true;
        this.unhold(s.bodyLen);
        s.charged -= s.bodyLen;
        s.bodyLen = 0;
        s.chunks = undefined;
        this.handlers.onTooLarge(this, s);
        if (!s.localDone) this.resetStream(id, H2_ERROR.CANCEL);
        return this.queueWindowFlush();
      }
      this.hold(s, n);
      if (s.closed) return this.queueWindowFlush(); // shed by the process budget
      (s.chunks ??= []).push(Buffer.from(buf.subarray(s0, e0)));
      s.bodyLen += n;
      s.unacked += end - start;
      // Give the stream its window back in large steps (bodies larger than the initial window).
      if (s.unacked >= 1 << 19 && !(flags & END_STREAM)) {
        this.queue(frame(FRAME.WINDOW_UPDATE, 0, id, u32(s.unacked)));
        s.unacked = 0;
      }
    }
    this.queueWindowFlush();
    if (flags & END_STREAM) {
      s.remoteDone = true;
      if (!s.tooLarge) this.complete(s);
      else if (s.localDone) this.forget(s);
    }
  }

  /** The connection-level WINDOW_UPDATE rides with the next flush. */
  private queueWindowFlush(): void {
    if (this.connUnacked >= 1 << 20 || (this.connUnacked > 0 && !this.flushScheduled)) this.queue(Buffer.alloc(0));
  }

  private complete(s: Stream): void {
    if (s.chunks) {
      s.body = s.chunks.length === 1 ? s.chunks[0] : Buffer.concat(s.chunks);
      s.chunks = undefined;
    }
    this.handlers.onRequest(this, s);
  }

  private onReset(id: number, buf: Buffer, start: number, end: number): void {
    if (id === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (end - start !== 4) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'RST_STREAM must carry 4 octets');
    if (id > this.lastStreamId) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, `RST_STREAM on idle stream ${id}`);
    const now = Date.now();
    if (now - this.resetWindowStart >= 1000) {
      this.resetWindowStart = now;
      this.resets = 0;
    }
    if (++this.resets > this.limits.maxResetsPerSecond) throw new ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'too many stream resets');
    const s = this.streams.get(id);
    if (!s) return;
    s.localDone = true;
    s.remoteDone = true;
    this.forget(s);
  }

  private onSettings(flags: number, id: number, buf: Buffer, start: number, end: number): void {
    if (id !== 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if (flags & ACK) {
      if (end !== start) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if ((end - start) % 6 !== 0) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'SETTINGS payload is not a multiple of 6');
    // Each entry may cost a walk over the streams (CVE-2020-11080): bound entries and frames.
    if ((end - start) / 6 > this.limits.maxSettingsEntries)
      throw new ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'too many SETTINGS entries');
    if (this.rateExceeded('settings', this.limits.maxSettingsPerSecond))
      throw new ConnectionError(H2_ERROR.ENHANCE_YOUR_CALM, 'too many SETTINGS frames');
    let initialWindow = -1;
    for (let p = start; p < end; p += 6) {
      const key = buf.readUInt16BE(p);
      const v = buf.readUInt32BE(p + 2);
      if (key === SETTING.ENABLE_PUSH && v > 1) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'ENABLE_PUSH must be 0 or 1');
      if (key === SETTING.INITIAL_WINDOW_SIZE) {
        if (v > MAX_WINDOW) throw new ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE above 2^31-1');
        // Entries are processed in order (RFC 9113 6.5.3): the last one is the one in force.
        initialWindow = v;
      }
      if (key === SETTING.MAX_FRAME_SIZE) {
        if (v < 16_384 || v > 16_777_215) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, `MAX_FRAME_SIZE ${v} out of range`);
        // We never send frames above our own reading limit either.
        this.peerMaxFrame = Math.min(v, 65_536);
      }
      // HEADER_TABLE_SIZE: our encoder never indexes. MAX_CONCURRENT_STREAMS: we never push.
    }
    if (initialWindow >= 0 && initialWindow !== this.peerInitialWindow) {
      const delta = initialWindow - this.peerInitialWindow;
      this.peerInitialWindow = initialWindow;
      for (const s of this.streams.values()) {
        s.sendWindow += delta;
        if (s.sendWindow > MAX_WINDOW) throw new ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'stream window above 2^31-1');
      }
    }
    this.queue(frame(FRAME.SETTINGS, ACK, 0));
    this.drainBlocked();
  }

  /** Counts a control frame in its one-second window; true past the limit. */
  private rateExceeded(kind: 'settings' | 'ping', max: number): boolean {
    const now = Date.now();
    if (kind === 'settings') {
      if (now - this.settingsWindowStart >= 1000) {
        this.settingsWindowStart = now;
        this.settingsCount = 0;
      }
      return ++this.settingsCount > max;
    }
    if (now - this.pingWindowStart >= 1000) {
      this.pingWindowStart = now;
      this.pings = 0;
    }
    return ++this.pings > max;
  }

  private onWindowUpdate(id: number, buf: Buffer, start: number, end: number): void {
    if (end - start !== 4) throw new ConnectionError(H2_ERROR.FRAME_SIZE_ERROR, 'WINDOW_UPDATE must carry 4 octets');
    const inc = buf.readUInt32BE(start) & 0x7fffffff;
    if (id === 0) {
      if (inc === 0) throw new ConnectionError(H2_ERROR.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.connSendWindow += inc;
      if (this.connSendWindow > MAX_WINDOW) throw new ConnectionError(H2_ERROR.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      return this.drainBlocked();
    }
    const s = this.streams.get(id);
    if (!s) return;
    if (inc === 0) return this.resetStream(id, H2_ERROR.PROTOCOL_ERROR);
    s.sendWindow += inc;
    if (s.sendWindow > MAX_WINDOW) return this.resetStream(id, H2_ERROR.FLOW_CONTROL_ERROR);
    if (s.pending) this.drainBlocked();
  }
}

const EMPTY = Buffer.alloc(0);
