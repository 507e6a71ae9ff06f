import { connect } from 'node:net';

/** What came back on one raw connection: the status (0 if none), headers, body, and whether the server closed it. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  text: string;
  closedByServer: boolean;
  error?: string;
}

function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(addr.slice(i + 1)) };
}

function parse(text: string): Pick<RawResponse, 'status' | 'headers' | 'body'> {
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const [line, ...rest] = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(line ?? '');
  const headers: Record<string, string> = {};
  for (const h of rest) {
    const i = h.indexOf(':');
    if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  return { status: m ? Number(m[1]) : 0, headers, body: end < 0 ? '' : text.slice(end + 4) };
}

/**
 * Writes `bytes` to addr exactly as given (fetch would normalise a malformed request line) and
 * reads until the server closes the connection, or until one whole response (by Content-Length)
 * has arrived, or timeoutMs.
 */
export function rawRequest(
  addr: string,
  bytes: string | Buffer | (string | Buffer)[],
  o: { timeoutMs?: number; gapMs?: number } = {},
): Promise<RawResponse> {
  const { host, port } = splitHostPort(addr);
  const parts = Array.isArray(bytes) ? bytes : [bytes];
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let done = false;
    const s = connect({ host, port });
    const finish = (closedByServer: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ ...parse(text), text, closedByServer, error });
    };
    const timer = setTimeout(() => finish(false), o.timeoutMs ?? 5000);
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      const r = parse(Buffer.concat(chunks).toString('latin1'));
      const length = Number(r.headers['content-length'] ?? NaN);
      if (r.status && Number.isFinite(length) && Buffer.byteLength(r.body, 'latin1') >= length) finish(false);
    });
    s.on('error', (e) => (error = (e as NodeJS.ErrnoException).code ?? e.message));
    s.on('close', () => finish(true));
    s.on('connect', () => {
      void (async () => {
        for (const p of parts) {
          if (s.destroyed) return;
          s.write(p);
          if (o.gapMs) await new Promise((r) => setTimeout(r, o.gapMs));
        }
      })();
    });
  });
}

/** A GET (or other method) request as bytes, with Host and Connection: close. */
export function requestBytes(target: string, o: { method?: string; headers?: string[]; body?: string } = {}): string {
  const headers = ['Host: 127.0.0.1', 'Connection: close', ...(o.headers ?? [])];
  return `${o.method ?? 'GET'} ${target} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n${o.body ?? ''}`;
}
