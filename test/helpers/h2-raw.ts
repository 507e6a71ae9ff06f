import { connect, type Socket } from 'node:net';

/** Raw HTTP/2 frames for tests that must send what a well-behaved client library never would. */

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export const T = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;

export function frame(type: number, flags: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(id, 5);
  return Buffer.concat([h, payload]);
}

/** A SETTINGS payload of [key, value] entries. */
export function settings(entries: Array<[number, number]>): Buffer {
  const b = Buffer.alloc(entries.length * 6);
  entries.forEach(([k, v], i) => {
    b.writeUInt16BE(k, i * 6);
    b.writeUInt32BE(v, i * 6 + 2);
  });
  return b;
}

export interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
}

/** A client connection that records every frame the server sends. */
export class RawPeer {
  readonly frames: Frame[] = [];
  closed = false;
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  private constructor(readonly sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      while (this.buf.length >= 9) {
        const len = this.buf.readUIntBE(0, 3);
        if (this.buf.length < 9 + len) break;
        this.frames.push({
          type: this.buf[3],
          flags: this.buf[4],
          id: this.buf.readUInt32BE(5) & 0x7fffffff,
          payload: Buffer.from(this.buf.subarray(9, 9 + len)),
        });
        this.buf = this.buf.subarray(9 + len);
      }
      this.wake();
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async open(port: number): Promise<RawPeer> {
    const sock = connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    return new RawPeer(sock);
  }

  send(...b: Buffer[]): void {
    if (!this.sock.destroyed) this.sock.write(Buffer.concat(b));
  }

  /** Waits until pred holds or the socket closes (or ms pass); returns pred's last value. */
  async until<R>(pred: (p: RawPeer) => R | undefined | false, ms = 5000): Promise<R | undefined | false> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = pred(this);
      if (v || this.closed || Date.now() > deadline) return v;
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(1, deadline - Date.now()));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  goaway(): { last: number; code: number; debug: string } | undefined {
    const g = this.frames.find((f) => f.type === T.GOAWAY);
    return g ? { last: g.payload.readUInt32BE(0), code: g.payload.readUInt32BE(4), debug: g.payload.subarray(8).toString() } : undefined;
  }

  /** The error code of the server's RST_STREAM on stream id, if any. */
  reset(id: number): number | undefined {
    const f = this.frames.find((x) => x.type === T.RST_STREAM && x.id === id);
    return f ? f.payload.readUInt32BE(0) : undefined;
  }

  close(): void {
    this.sock.destroy();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** Polls cond until it holds or ms pass. */
export async function eventually(cond: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}
