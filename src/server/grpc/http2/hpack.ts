/**
 * HPACK (RFC 7541) for meshca's HTTP/2 server: a complete decoder (static and dynamic tables,
 * size updates, Huffman) and the few literal encodings the server's answers need. The encoder
 * never indexes, so the peer's SETTINGS_HEADER_TABLE_SIZE never matters to it.
 *
 * Strings are latin1 so that a header value's octets survive unchanged and a string's length is
 * its octet count (the dynamic table's size accounting is in octets).
 */

export class HpackError extends Error {}

/** RFC 7541 Appendix A. */
const STATIC: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

/**
 * Code lengths of the 257 symbols (256 octets and EOS) of RFC 7541 Appendix B. The code is
 * canonical: codes are assigned in order of length, and within one length in order of symbol,
 * so the lengths define it completely (huffman tests check codes against the appendix).
 */
const CODE_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10,
  12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7,
  7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22,
  23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22,
  23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20,
  24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];
const EOS = 256;

/** [code, length] of each symbol, from the canonical assignment. */
export const HUFFMAN_CODES: ReadonlyArray<readonly [number, number]> = (() => {
  const order = CODE_LENGTHS.map((len, sym) => [len, sym] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const codes: Array<[number, number]> = new Array(CODE_LENGTHS.length);
  let code = 0;
  let prev = order[0][0];
  for (let i = 0; i < order.length; i++) {
    const [len, sym] = order[i];
    if (i > 0) code = (code + 1) * 2 ** (len - prev);
    prev = len;
    codes[sym] = [code, len];
  }
  return codes;
})();

/**
 * A decoding automaton over 4-bit nibbles: states are the code tree's internal nodes (root = 0).
 * NEXT[state * 16 + nibble] is the next state (-1: the bits spell EOS, an error), EMIT the symbol
 * finished on the way (-1: none; the shortest code has 5 bits, so a nibble finishes at most one).
 * A string may end only at the root or on a path of at most 7 one-bits (a prefix of EOS).
 */
const { NEXT, EMIT, ACCEPT } = (() => {
  // Build the tree: children[node * 2 + bit], leaves encoded as -(symbol + 1).
  const children: number[] = [0, 0];
  let nodes = 1;
  for (let sym = 0; sym < HUFFMAN_CODES.length; sym++) {
    const [code, len] = HUFFMAN_CODES[sym];
    let node = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = Math.floor(code / 2 ** i) & 1;
      const at = node * 2 + bit;
      if (i === 0) {
        children[at] = -(sym + 1);
      } else {
        if (children[at] === 0) {
          children[at] = nodes++;
          children.push(0, 0);
        }
        node = children[at];
      }
    }
  }
  // Depth of all-ones paths from the root (EOS prefixes), -1 for every other state.
  const onesDepth = new Int8Array(nodes).fill(-1);
  for (let node = 0, d = 0; node > 0 || d === 0; d++) {
    onesDepth[node] = d;
    const c = children[node * 2 + 1];
    if (c <= 0) break;
    node = c;
  }
  const next = new Int16Array(nodes * 16);
  const emit = new Int16Array(nodes * 16);
  for (let s = 0; s < nodes; s++) {
    for (let nib = 0; nib < 16; nib++) {
      let node = s;
      let out = -1;
      let bad = false;
      for (let i = 3; i >= 0; i--) {
        const c = children[node * 2 + ((nib >> i) & 1)];
        if (c < 0) {
          const sym = -c - 1;
          if (sym === EOS) bad = true;
          out = sym;
          node = 0;
        } else node = c;
      }
      next[s * 16 + nib] = bad ? -1 : node;
      emit[s * 16 + nib] = bad ? -1 : out;
    }
  }
  const accept = new Uint8Array(nodes);
  for (let s = 0; s < nodes; s++) accept[s] = onesDepth[s] >= 0 && onesDepth[s] <= 7 ? 1 : 0;
  return { NEXT: next, EMIT: emit, ACCEPT: accept };
})();

const scratch = { buf: Buffer.allocUnsafe(4096) };

/** Decodes a Huffman-coded string (latin1). */
export function huffmanDecode(src: Buffer, start: number, end: number): string {
  // Every code is at least 5 bits, so the output is at most 8/5 of the input.
  const max = Math.ceil(((end - start) * 8) / 5);
  if (scratch.buf.length < max) scratch.buf = Buffer.allocUnsafe(max * 2);
  const out = scratch.buf;
  let n = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const b = src[i];
    let k = state * 16 + (b >> 4);
    state = NEXT[k];
    if (state < 0) throw new HpackError('Huffman string contains EOS');
    if (EMIT[k] >= 0) out[n++] = EMIT[k];
    k = state * 16 + (b & 15);
    state = NEXT[k];
    if (state < 0) throw new HpackError('Huffman string contains EOS');
    if (EMIT[k] >= 0) out[n++] = EMIT[k];
  }
  if (!ACCEPT[state]) throw new HpackError('Huffman string has bad padding');
  return out.toString('latin1', 0, n);
}

/** Huffman-encodes a latin1 string (tests and clients; the server sends plain literals). */
export function huffmanEncode(s: string): Buffer {
  const bytes: number[] = [];
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const [code, len] = HUFFMAN_CODES[s.charCodeAt(i) & 0xff];
    for (let j = len - 1; j >= 0; j--) {
      acc = (acc << 1) | (Math.floor(code / 2 ** j) & 1);
      if (++bits === 8) {
        bytes.push(acc);
        acc = 0;
        bits = 0;
      }
    }
  }
  if (bits > 0) bytes.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) & 0xff);
  return Buffer.from(bytes);
}

export type HeaderList = Array<[string, string]>;

/** Most octets an integer may take (values beyond 2^28 are refused). */
const MAX_INT = 2 ** 28;

/**
 * One connection's decoding context. Every header block of the connection must go through
 * decode(), in order, whatever becomes of its stream: the dynamic table is shared.
 */
export class HpackDecoder {
  /** Newest first. */
  private table: Array<[string, string]> = [];
  private size = 0;
  private maxSize: number;

  /** limit: our SETTINGS_HEADER_TABLE_SIZE, the most a size update may ask for. */
  constructor(private readonly limit = 4096) {
    this.maxSize = limit;
  }

  get tableSize(): number {
    return this.size;
  }

  get tableEntries(): ReadonlyArray<readonly [string, string]> {
    return this.table;
  }

  /**
   * Decodes one complete header block. maxListSize bounds the decoded list (RFC 9113 SETTINGS_
   * MAX_HEADER_LIST_SIZE accounting: name + value + 32 per field); beyond it the block is still
   * decoded to the end (keeping the table in step) and `tooLarge` is set. `size` is the list's
   * size by that accounting.
   */
  decode(buf: Buffer, start: number, end: number, maxListSize = Infinity): { headers: HeaderList; tooLarge: boolean; size: number } {
    const headers: HeaderList = [];
    let listSize = 0;
    let p = start;
    let fieldsSeen = false;
    const int = (prefixBits: number): number => {
      if (p >= end) throw new HpackError('truncated integer');
      const mask = (1 << prefixBits) - 1;
      let v = buf[p++] & mask;
      if (v < mask) return v;
      let m = 1;
      for (;;) {
        if (p >= end) throw new HpackError('truncated integer');
        const b = buf[p++];
        v += (b & 0x7f) * m;
        if (v > MAX_INT) throw new HpackError('integer too large');
        if ((b & 0x80) === 0) return v;
        m *= 128;
      }
    };
    const str = (): string => {
      if (p >= end) throw new HpackError('truncated string');
      const huff = (buf[p] & 0x80) !== 0;
      const len = int(7);
      if (end - p < len) throw new HpackError('truncated string');
      const s = huff ? huffmanDecode(buf, p, p + len) : buf.toString('latin1', p, p + len);
      p += len;
      return s;
    };
    const entry = (index: number): readonly [string, string] => {
      if (index === 0) throw new HpackError('index 0');
      if (index <= STATIC.length) return STATIC[index - 1];
      const e = this.table[index - STATIC.length - 1];
      if (!e) throw new HpackError(`index ${index} is beyond the table`);
      return e;
    };
    const add = (name: string, value: string) => {
      listSize += name.length + value.length + 32;
      if (listSize <= maxListSize) headers.push([name, value]);
    };
    while (p < end) {
      const b = buf[p];
      if (b & 0x80) {
        const [name, value] = entry(int(7));
        add(name, value);
        fieldsSeen = true;
      } else if (b & 0x40) {
        const idx = int(6);
        const name = idx === 0 ? str() : entry(idx)[0];
        const value = str();
        this.insert(name, value);
        add(name, value);
        fieldsSeen = true;
      } else if (b & 0x20) {
        // A size update is allowed only at the start of a block (RFC 7541 4.2).
        if (fieldsSeen) throw new HpackError('table size update after a header field');
        const size = int(5);
        if (size > this.limit) throw new HpackError(`table size update to ${size} exceeds ${this.limit}`);
        this.maxSize = size;
        this.evict();
      } else {
        // 0000 literal without indexing, 0001 never indexed: the same for a decoder.
        const idx = int(4);
        const name = idx === 0 ? str() : entry(idx)[0];
        add(name, str());
        fieldsSeen = true;
      }
    }
    return { headers, tooLarge: listSize > maxListSize, size: listSize };
  }

  private insert(name: string, value: string): void {
    const size = name.length + value.length + 32;
    if (size > this.maxSize) {
      // An entry larger than the table empties it (RFC 7541 4.4).
      this.table = [];
      this.size = 0;
      return;
    }
    this.table.unshift([name, value]);
    this.size += size;
    this.evict();
  }

  private evict(): void {
    while (this.size > this.maxSize) {
      const [n, v] = this.table.pop()!;
      this.size -= n.length + v.length + 32;
    }
  }
}

function pushInt(out: number[], prefix: number, prefixBits: number, v: number): void {
  const mask = (1 << prefixBits) - 1;
  if (v < mask) {
    out.push(prefix | v);
    return;
  }
  out.push(prefix | mask);
  v -= mask;
  while (v >= 128) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

const STATIC_NAME = new Map<string, number>();
STATIC.forEach(([n], i) => {
  if (!STATIC_NAME.has(n)) STATIC_NAME.set(n, i + 1);
});
const STATIC_FIELD = new Map<string, number>();
STATIC.forEach(([n, v], i) => STATIC_FIELD.set(`${n}\0${v}`, i + 1));

/**
 * Encodes fields as indexed static entries when they are one, else as literals without indexing
 * (with a static name index when there is one). Values are written as latin1 octets.
 */
export function encodeHeaders(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const out: number[] = [];
  for (const [name, value] of fields) {
    const full = STATIC_FIELD.get(`${name}\0${value}`);
    if (full !== undefined) {
      pushInt(out, 0x80, 7, full);
      continue;
    }
    const idx = STATIC_NAME.get(name);
    if (idx !== undefined) pushInt(out, 0x00, 4, idx);
    else {
      out.push(0x00);
      pushInt(out, 0x00, 7, name.length);
      for (let i = 0; i < name.length; i++) out.push(name.charCodeAt(i) & 0xff);
    }
    pushInt(out, 0x00, 7, value.length);
    for (let i = 0; i < value.length; i++) out.push(value.charCodeAt(i) & 0xff);
  }
  return Buffer.from(out);
}
