/**
 * A hostile HTTP/2 peer: frames written by hand on a TLS socket (ALPN h2), so that the suite can
 * send what no well-behaved client library would. It reads just enough of the server's frames to
 * see GOAWAY, RST_STREAM and HEADERS (with their HPACK block kept raw) and when the socket closes.
 */
import { connect, type TLSSocket } from 'node:tls';
import { encodeIndexed, encodeInteger, encodeLiteral, encodeString, HpackDecoder } from '../../bench/lib/hpack.js';
import { requestFrame } from '../../bench/lib/wire.js';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const T = {
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
export const F = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
export const S = {
  HEADER_TABLE_SIZE: 1,
  ENABLE_PUSH: 2,
  MAX_CONCURRENT_STREAMS: 3,
  INITIAL_WINDOW_SIZE: 4,
  MAX_FRAME_SIZE: 5,
  MAX_HEADER_LIST_SIZE: 6,
} as const;
export const CA_PATH = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

export function frame(type: number, flags: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(9 + payload.length);
  out.writeUIntBE(payload.length, 0, 3);
  out[3] = type;
  out[4] = flags;
  out.writeUInt32BE(id >>> 0, 5);
  payload.copy(out, 9);
  return out;
}

export function settings(entries: ReadonlyArray<readonly [number, number]>): Buffer {
  const p = Buffer.allocUnsafe(entries.length * 6);
  entries.forEach(([k, v], i) => {
    p.writeUInt16BE(k, i * 6);
    p.writeUInt32BE(v >>> 0, i * 6 + 2);
  });
  return frame(T.SETTINGS, 0, 0, p);
}

export const u32 = (v: number): Buffer => {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};

/**
 * The header block of a gRPC call to the CA, with `extra` headers appended as literals (never
 * indexed, so blocks can be sent in any order). Names and values are written as given, CR, LF,
 * NUL and upper case included: the point is to send what a library would refuse to.
 */
export function requestBlock(
  extra: ReadonlyArray<readonly [string, string]> = [],
  o: { path?: string; method?: 'POST' | 'GET' } = {},
): Buffer {
  return Buffer.concat([
    encodeIndexed(o.method === 'GET' ? 2 : 3),
    encodeIndexed(7), // :scheme https
    encodeLiteral(':path', o.path ?? CA_PATH),
    encodeLiteral(':authority', 'istiod.istio-system.svc'),
    encodeLiteral('content-type', 'application/grpc'),
    encodeLiteral('te', 'trailers'),
    ...extra.map(([n, v]) => rawLiteral(n, v)),
  ]);
}

/** A literal header field without indexing, with a new name, bytes as given (latin1). */
export function rawLiteral(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0]), encodeString(name), encodeString(value)]);
}

/** An HPACK indexed field pointing far beyond both tables: a COMPRESSION_ERROR for any decoder. */
export const BAD_HPACK_INDEX = encodeInteger(5000, 7, 0x80);

/** One length-prefixed IstioCertificateRequest (csr, validity). */
export const grpcBody = (csrPem: string, ttl = 3600): Buffer => requestFrame(csrPem, ttl);

export interface PeerEvents {
  goaway?: { code: number; debug: string };
  /** RST_STREAM codes by stream id. */
  resets: Map<number, number>;
  /** Response header lists by stream id (HEADERS frames, decoded). */
  headers: Map<number, Array<[string, string]>[]>;
  closed: boolean;
  bytesIn: number;
}

/** A raw HTTP/2 connection to a gRPC port. `read: false` never reads (a peer that stalls). */
export class RawPeer {
  readonly ev: PeerEvents = { resets: new Map(), headers: new Map(), closed: false, bytesIn: 0 };
  readonly closed: Promise<void>;
  private inbuf: Buffer = Buffer.alloc(0);
  private readonly hpack = new HpackDecoder(4096);
  private pendingBlock: { id: number; parts: Buffer[] } | undefined;

  private constructor(
    readonly sock: TLSSocket,
    read: boolean,
  ) {
    this.closed = new Promise((resolve) => {
      sock.once('close', () => {
        this.ev.closed = true;
        resolve();
      });
    });
    sock.on('error', () => {});
    if (read) sock.on('data', (d: Buffer) => this.onData(d));
    else sock.pause();
  }

  static async open(addr: string, o: { read?: boolean; preface?: boolean; settings?: Buffer } = {}): Promise<RawPeer> {
    const [host, port] = splitAddr(addr);
    const sock = connect({ host, port, ALPNProtocols: ['h2'], rejectUnauthorized: false, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => {
      sock.once('secureConnect', resolve);
      sock.once('error', reject);
    });
    const p = new RawPeer(sock, o.read ?? true);
    if (o.preface ?? true) p.write(Buffer.concat([PREFACE, o.settings ?? settings([])]));
    return p;
  }

  /** Writes unless the socket is gone; false once the server has closed it (or the kernel buffer is full). */
  write(b: Buffer): boolean {
    if (this.sock.destroyed || this.ev.closed) return false;
    return this.sock.write(b);
  }

  /** Writes and waits until the socket has taken it (or is closed), so a flood cannot outrun its own memory. */
  async send(b: Buffer): Promise<boolean> {
    if (this.write(b)) return !this.ev.closed;
    if (this.sock.destroyed || this.ev.closed) return false;
    await Promise.race([new Promise((r) => this.sock.once('drain', r)), this.closed, sleep(1000)]);
    return !this.ev.closed && !this.sock.destroyed;
  }

  destroy(): void {
    this.sock.destroy();
  }

  /** Resolves when the server has ended the connection (GOAWAY or close), false after ms. */
  async endedWithin(ms: number): Promise<boolean> {
    if (this.ev.closed || this.ev.goaway) return true;
    return Promise.race([
      this.closed.then(() => true),
      new Promise<boolean>((resolve) => {
        const t = setInterval(() => {
          if (this.ev.goaway) {
            clearInterval(t);
            resolve(true);
          }
        }, 20);
        setTimeout(() => {
          clearInterval(t);
          resolve(this.ev.closed || this.ev.goaway !== undefined);
        }, ms);
      }),
    ]);
  }

  /** Waits until stream `id` was reset or answered (headers with END_STREAM seen as trailers), or ms passed. */
  async streamOutcome(id: number, ms: number): Promise<{ reset?: number; headers: Array<[string, string]>[]; ended: boolean }> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const reset = this.ev.resets.get(id);
      const hs = this.ev.headers.get(id) ?? [];
      if (reset !== undefined || hs.some((h) => h.some(([n]) => n === 'grpc-status')) || this.ev.goaway || this.ev.closed) {
        return { reset, headers: hs, ended: true };
      }
      await sleep(10);
    }
    return { reset: this.ev.resets.get(id), headers: this.ev.headers.get(id) ?? [], ended: false };
  }

  private onData(d: Buffer): void {
    this.ev.bytesIn += d.length;
    this.inbuf = this.inbuf.length ? Buffer.concat([this.inbuf, d]) : d;
    let p = 0;
    while (this.inbuf.length - p >= 9) {
      const len = this.inbuf.readUIntBE(p, 3);
      if (this.inbuf.length - p - 9 < len) break;
      const type = this.inbuf[p + 3];
      const flags = this.inbuf[p + 4];
      const id = this.inbuf.readUInt32BE(p + 5) & 0x7fffffff;
      const payload = this.inbuf.subarray(p + 9, p + 9 + len);
      p += 9 + len;
      this.onFrame(type, flags, id, payload);
    }
    this.inbuf = this.inbuf.subarray(p);
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (type === T.GOAWAY && payload.length >= 8) this.ev.goaway = { code: payload.readUInt32BE(4), debug: payload.subarray(8).toString() };
    else if (type === T.RST_STREAM && payload.length === 4) this.ev.resets.set(id, payload.readUInt32BE(0));
    else if (type === T.SETTINGS && !(flags & F.ACK)) this.write(frame(T.SETTINGS, F.ACK, 0));
    else if (type === T.HEADERS || type === T.CONTINUATION) {
      let block = payload;
      if (type === T.HEADERS) {
        let s = 0;
        let e = payload.length;
        if (flags & F.PADDED) {
          s = 1;
          e -= payload[0];
        }
        if (flags & F.PRIORITY) s += 5;
        block = payload.subarray(s, e);
        this.pendingBlock = { id, parts: [] };
      }
      this.pendingBlock?.parts.push(Buffer.from(block));
      if (flags & F.END_HEADERS && this.pendingBlock) {
        const all = Buffer.concat(this.pendingBlock.parts);
        try {
          const flat: string[] = [];
          this.hpack.decode(all, 0, all.length, flat);
          const list: Array<[string, string]> = [];
          for (let i = 0; i < flat.length; i += 2) list.push([flat[i], flat[i + 1]]);
          const had = this.ev.headers.get(this.pendingBlock.id) ?? [];
          had.push(list);
          this.ev.headers.set(this.pendingBlock.id, had);
        } catch {
          // A block we cannot decode is the server's bug, not this peer's: the test sees no headers.
        }
        this.pendingBlock = undefined;
      }
    }
  }
}

export function splitAddr(addr: string): [string, number] {
  const i = addr.lastIndexOf(':');
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The value of a header in a decoded list. */
export function headerOf(lists: Array<[string, string]>[], name: string): string | undefined {
  for (const l of lists) for (const [n, v] of l) if (n === name) return v;
  return undefined;
}
