/**
 * HPACK (RFC 7541) for the load generator's hand-written HTTP/2 client (h2raw.ts): a complete
 * decoder (static table, dynamic table with size updates and eviction, prefixed integers, Huffman
 * strings) for the server's response headers, and the few encoder pieces needed to pre-encode the
 * request header blocks once at start-up (literals without indexing, optional Huffman).
 * Written from the RFC; the Huffman code is canonical, so it is rebuilt here from the code lengths
 * of Appendix B (the tests check the resulting codes against values printed in the appendix).
 */

/** A header block that breaks RFC 7541: in HTTP/2 a connection error of type COMPRESSION_ERROR. */
export class HpackError extends Error {}

/** RFC 7541 Appendix A. Index 1 is STATIC_TABLE[0]. */
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
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

/** Code length in bits of each symbol 0..255 and EOS (256), from RFC 7541 Appendix B. */
// prettier-ignore
const HUFFMAN_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, //   0-15
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, //  16-31
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, //          ' ' - '/'
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, //               '0' - '?'
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, //                 '@' - 'O'
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, //              'P' - '_'
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, //                 '`' - 'o'
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, //             'p' - 127
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128-143
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144-159
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160-175
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176-191
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192-207
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208-223
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224-239
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240-255
  30, //                                                              EOS
];

const EOS = 256;

/** Canonical code assignment: by length, then by symbol, each code one more than the previous. */
function canonicalCodes(): Uint32Array {
  const order = Array.from({ length: 257 }, (_, i) => i).sort((a, b) => HUFFMAN_LENGTHS[a] - HUFFMAN_LENGTHS[b] || a - b);
  const codes = new Uint32Array(257);
  let code = 0;
  let len = HUFFMAN_LENGTHS[order[0]];
  for (const sym of order) {
    code *= 2 ** (HUFFMAN_LENGTHS[sym] - len);
    len = HUFFMAN_LENGTHS[sym];
    codes[sym] = code;
    code++;
  }
  return codes;
}

const HUFFMAN_CODES = canonicalCodes();

/** The Huffman code of a symbol (0..256) as [code aligned to the least significant bit, length]. */
export function huffmanCode(sym: number): [number, number] {
  return [HUFFMAN_CODES[sym], HUFFMAN_LENGTHS[sym]];
}

/*
 * Decoding walks the code tree four bits at a time. States are the tree's 256 internal nodes (0 is
 * the root); for each state and nibble, TRANSITIONS holds the next state, the symbol completed on
 * the way (at most one: the shortest code is 5 bits) and two flags: FAIL when the nibble completes
 * EOS, ACCEPT when the next state is the root or a node on the all-ones path at most 7 bits deep
 * (a legal end: padding must be a prefix of EOS, shorter than a byte).
 */
const NO_SYM = 0x1ff;
const FAIL = 1 << 17;
const ACCEPT = 1 << 18;
const TRANSITIONS = buildTransitions();

function buildTransitions(): Uint32Array {
  // Children of internal nodes: >= 0 another internal node, < 0 a leaf holding symbol -(c + 1).
  const zero: number[] = [0];
  const one: number[] = [0];
  const allOnesDepth: number[] = [0]; // depth when the path from the root is all ones, else -1
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const code = HUFFMAN_CODES[sym];
    const len = HUFFMAN_LENGTHS[sym];
    let node = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = Math.floor(code / 2 ** i) & 1;
      const kids = bit ? one : zero;
      if (i === 0) {
        kids[node] = -(sym + 1);
        break;
      }
      if (kids[node] === 0 || kids[node] === undefined) {
        kids[node] = nodes;
        zero[nodes] = 0;
        one[nodes] = 0;
        allOnesDepth[nodes] = bit && allOnesDepth[node] >= 0 ? allOnesDepth[node] + 1 : -1;
        nodes++;
      }
      node = kids[node];
    }
  }
  if (nodes !== 256) throw new Error(`hpack: Huffman tree has ${nodes} internal nodes, expected 256`);
  const t = new Uint32Array(256 * 16);
  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let sym = NO_SYM;
      let fail = false;
      for (let b = 3; b >= 0; b--) {
        const child = (nibble >> b) & 1 ? one[node] : zero[node];
        if (child < 0) {
          const s = -child - 1;
          if (s === EOS) fail = true;
          else sym = s;
          node = 0;
        } else node = child;
      }
      const accept = node === 0 || (allOnesDepth[node] >= 0 && allOnesDepth[node] <= 7);
      t[(state << 4) | nibble] = node | (sym << 8) | (fail ? FAIL : 0) | (accept ? ACCEPT : 0);
    }
  }
  return t;
}

let huffOut = Buffer.allocUnsafe(1024);

/** Decodes a Huffman-coded string literal (bytes start..end of src) as latin1 text. */
export function huffmanDecode(src: Uint8Array, start = 0, end = src.length): string {
  const max = Math.ceil(((end - start) * 8) / 5);
  if (huffOut.length < max) huffOut = Buffer.allocUnsafe(Math.max(max, huffOut.length * 2));
  const out = huffOut;
  let n = 0;
  let state = 0;
  let e = ACCEPT;
  for (let i = start; i < end; i++) {
    const byte = src[i];
    e = TRANSITIONS[(state << 4) | (byte >> 4)];
    if (e & FAIL) throw new HpackError('Huffman string contains EOS');
    let sym = (e >> 8) & NO_SYM;
    if (sym !== NO_SYM) out[n++] = sym;
    state = e & 0xff;
    e = TRANSITIONS[(state << 4) | (byte & 0xf)];
    if (e & FAIL) throw new HpackError('Huffman string contains EOS');
    sym = (e >> 8) & NO_SYM;
    if (sym !== NO_SYM) out[n++] = sym;
    state = e & 0xff;
  }
  if ((e & ACCEPT) === 0) throw new HpackError('Huffman string has invalid padding');
  return out.toString('latin1', 0, n);
}

/** Huffman-encodes bytes (for pre-encoding requests and for tests). */
export function huffmanEncode(src: Uint8Array): Buffer {
  let bits = 0;
  for (const b of src) bits += HUFFMAN_LENGTHS[b];
  const out = Buffer.alloc(Math.ceil(bits / 8));
  let acc = 0; // pending bits, at most 7 + 30, kept below 2^53
  let accBits = 0;
  let n = 0;
  for (const b of src) {
    acc = acc * 2 ** HUFFMAN_LENGTHS[b] + HUFFMAN_CODES[b];
    accBits += HUFFMAN_LENGTHS[b];
    while (accBits >= 8) {
      accBits -= 8;
      const byte = Math.floor(acc / 2 ** accBits);
      out[n++] = byte;
      acc -= byte * 2 ** accBits;
    }
  }
  if (accBits > 0) out[n] = (acc << (8 - accBits)) | (0xff >> accBits); // pad with the top of EOS
  return out;
}

/** An integer with an N-bit prefix (RFC 7541 5.1); `flags` fills the bits above the prefix. */
export function encodeInteger(value: number, prefixBits: number, flags = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([flags | value]);
  const out = [flags | max];
  let v = value - max;
  while (v >= 128) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** A string literal (RFC 7541 5.2), Huffman-coded when asked and shorter. */
export function encodeString(s: string, huffman = false): Buffer {
  const raw = Buffer.from(s, 'latin1');
  if (huffman) {
    const h = huffmanEncode(raw);
    if (h.length < raw.length) return Buffer.concat([encodeInteger(h.length, 7, 0x80), h]);
  }
  return Buffer.concat([encodeInteger(raw.length, 7), raw]);
}

/** The static table index of a header name (first match), or 0. */
export function staticNameIndex(name: string): number {
  return STATIC_TABLE.findIndex(([n]) => n === name) + 1;
}

/** The static table index of an exact name and value, or 0. */
export function staticIndex(name: string, value: string): number {
  return STATIC_TABLE.findIndex(([n, v]) => n === name && v === value) + 1;
}

/** An indexed header field (RFC 7541 6.1). */
export function encodeIndexed(index: number): Buffer {
  return encodeInteger(index, 7, 0x80);
}

/**
 * A literal header field without indexing (RFC 7541 6.2.2), naming the header by its static table
 * index when it has one. Nothing enters the peer's dynamic table.
 */
export function encodeLiteral(name: string, value: string, huffman = false): Buffer {
  const idx = staticNameIndex(name);
  if (idx) return Buffer.concat([encodeInteger(idx, 4), encodeString(value, huffman)]);
  return Buffer.concat([Buffer.from([0]), encodeString(name, huffman), encodeString(value, huffman)]);
}

/** A dynamic table size update (RFC 7541 6.3). */
export function encodeSizeUpdate(size: number): Buffer {
  return encodeInteger(size, 5, 0x20);
}

/**
 * Decoder state of one HTTP/2 connection: every header block the peer sends must go through
 * decode(), in order, even for streams the caller no longer cares about.
 */
export class HpackDecoder {
  /** Dynamic table, oldest first (dynamic index 1 = last element). */
  private names: string[] = [];
  private values: string[] = [];
  private head = 0; // first live element of names/values (evicted ones before it)
  /** Current size of the dynamic table (RFC 7541 4.1). */
  size = 0;
  /** Current maximum size, as last set by the encoder with a size update. */
  maxSize: number;
  private pos = 0;
  private end = 0;

  /** `limit`: the SETTINGS_HEADER_TABLE_SIZE we advertised (4096 unless said otherwise). */
  constructor(readonly limit = 4096) {
    this.maxSize = limit;
  }

  /** Entries newest first (dynamic index 1 first), for tests. */
  entries(): [string, string][] {
    const out: [string, string][] = [];
    for (let i = this.names.length - 1; i >= this.head; i--) out.push([this.names[i], this.values[i]]);
    return out;
  }

  /** Decodes one complete header block, appending name, value, name, value... to `out`. */
  decode(buf: Buffer, start: number, end: number, out: string[]): void {
    this.pos = start;
    this.end = end;
    let fields = 0;
    while (this.pos < end) {
      const b = buf[this.pos];
      if (b & 0x80) {
        // 6.1 indexed header field
        const idx = this.int(buf, 7);
        if (idx === 0) throw new HpackError('indexed header field with index 0');
        if (idx <= 61) {
          const e = STATIC_TABLE[idx - 1];
          out.push(e[0], e[1]);
        } else {
          const i = this.dyn(idx);
          out.push(this.names[i], this.values[i]);
        }
        fields++;
      } else if (b & 0x40) {
        // 6.2.1 literal with incremental indexing
        const idx = this.int(buf, 6);
        const name = idx === 0 ? this.str(buf) : this.name(idx);
        const value = this.str(buf);
        out.push(name, value);
        this.add(name, value);
        fields++;
      } else if (b & 0x20) {
        // 6.3 dynamic table size update: only at the start of a block
        if (fields > 0) throw new HpackError('dynamic table size update after a header field');
        const size = this.int(buf, 5);
        if (size > this.limit) throw new HpackError(`dynamic table size update to ${size} exceeds the ${this.limit} limit`);
        this.maxSize = size;
        this.evict(0);
      } else {
        // 6.2.2 without indexing (0000), 6.2.3 never indexed (0001)
        const idx = this.int(buf, 4);
        const name = idx === 0 ? this.str(buf) : this.name(idx);
        const value = this.str(buf);
        out.push(name, value);
        fields++;
      }
    }
  }

  /** Array position of dynamic table entry `idx` (62 = newest). */
  private dyn(idx: number): number {
    const i = this.names.length - 1 - (idx - 62);
    if (i < this.head) throw new HpackError(`header table index ${idx} is beyond the table`);
    return i;
  }

  private name(idx: number): string {
    return idx <= 61 ? STATIC_TABLE[idx - 1][0] : this.names[this.dyn(idx)];
  }

  private add(name: string, value: string): void {
    const size = name.length + value.length + 32;
    if (size > this.maxSize) {
      // 4.4: an entry larger than the table empties it and is not added.
      this.evict(this.maxSize);
      return;
    }
    this.evict(size);
    this.names.push(name);
    this.values.push(value);
    this.size += size;
  }

  /** Evicts oldest entries until `room` more octets fit. */
  private evict(room: number): void {
    while (this.size + room > this.maxSize && this.head < this.names.length) {
      this.size -= this.names[this.head].length + this.values[this.head].length + 32;
      this.head++;
    }
    if (this.head === this.names.length) {
      this.names.length = 0;
      this.values.length = 0;
      this.head = 0;
    } else if (this.head > 64 && this.head * 2 > this.names.length) {
      this.names = this.names.slice(this.head);
      this.values = this.values.slice(this.head);
      this.head = 0;
    }
  }

  /** 5.1: an integer whose prefix occupies the low `prefixBits` of the current octet. */
  private int(buf: Buffer, prefixBits: number): number {
    const mask = (1 << prefixBits) - 1;
    let v = buf[this.pos++] & mask;
    if (v < mask) return v;
    let mul = 1;
    for (;;) {
      if (this.pos >= this.end) throw new HpackError('truncated integer');
      const b = buf[this.pos++];
      v += (b & 0x7f) * mul;
      if (v > 0x7fffffff) throw new HpackError('integer overflow');
      if ((b & 0x80) === 0) return v;
      mul *= 128;
    }
  }

  /** 5.2: a string literal. */
  private str(buf: Buffer): string {
    if (this.pos >= this.end) throw new HpackError('truncated header block');
    const huffman = (buf[this.pos] & 0x80) !== 0;
    const len = this.int(buf, 7);
    const start = this.pos;
    if (len > this.end - start) throw new HpackError('string literal runs past the header block');
    this.pos = start + len;
    if (huffman) return huffmanDecode(buf, start, start + len);
    return buf.toString('latin1', start, start + len);
  }
}
