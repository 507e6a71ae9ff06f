/**
 * A minimal, strict DER reader and writer for the issuance hot path. The reader accepts
 * only definite, minimally encoded lengths and low tag numbers (everything a CSR or a
 * certificate uses); anything else is refused, never guessed at. Every read is bounded by
 * an explicit limit, so no offset can leave the buffer.
 */

/** Thrown by the reader; callers turn it into the MeshcaError their context calls for. */
export class DerError extends Error {
  override readonly name = 'DerError';
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** One tag-length-value: the tag byte, and offsets of its first byte, its contents and its end. */
export interface Tlv {
  tag: number;
  start: number;
  body: number;
  end: number;
}

/** The bit length of a positive big-endian magnitude without leading zero octets. */
export function bitLength(buf: Uint8Array, start: number, end: number): number {
  return (end - start - 1) * 8 + (32 - Math.clz32(buf[start]));
}

/** Reads the TLV at `pos`, which must end at or before `limit`. */
export function readTlv(buf: Uint8Array, pos: number, limit: number): Tlv {
  if (limit > buf.length) limit = buf.length;
  if (pos + 2 > limit) throw new DerError(`truncated header at offset ${pos}`);
  const tag = buf[pos];
  // High tag numbers (low five bits all set) never occur in the structures read here.
  if ((tag & 0x1f) === 0x1f) throw new DerError(`multi-byte tag at offset ${pos}`);
  let len = buf[pos + 1];
  let body = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    // 0x80 is BER's indefinite length; more than 4 length octets cannot fit any buffer here.
    if (n === 0 || n > 4) throw new DerError(`unsupported length form at offset ${pos}`);
    if (body + n > limit) throw new DerError(`truncated length at offset ${pos}`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[body + i];
    // DER: the long form only when needed, and without leading zero octets.
    if (len < 0x80 || buf[body] === 0) throw new DerError(`non-minimal length at offset ${pos}`);
    body += n;
  }
  const end = body + len;
  if (end > limit) throw new DerError(`length ${len} at offset ${pos} runs past the end of its container`);
  return { tag, start: pos, body, end };
}

/** Reads the TLV at `pos` and insists on its tag. */
export function expectTlv(buf: Uint8Array, pos: number, limit: number, tag: number, what: string): Tlv {
  const t = readTlv(buf, pos, limit);
  if (t.tag !== tag) {
    throw new DerError(`${what}: expected tag 0x${tag.toString(16)} at offset ${pos}, found 0x${t.tag.toString(16)}`);
  }
  return t;
}

/** True when the bytes of buf[start, end) equal `want`. */
export function bytesEqual(buf: Uint8Array, start: number, end: number, want: Uint8Array): boolean {
  if (end - start !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (buf[start + i] !== want[i]) return false;
  return true;
}

/**
 * A small INTEGER (at most 6 content octets) as a JS number, two's complement like DER.
 * Larger values are refused: no field read this way legitimately needs them.
 */
export function readSmallInt(buf: Uint8Array, t: Tlv): number {
  const n = t.end - t.body;
  if (n < 1 || n > 6) throw new DerError(`INTEGER of ${n} octets at offset ${t.start}`);
  if (n > 1 && (buf[t.body] === 0 ? buf[t.body + 1] < 0x80 : buf[t.body] === 0xff && buf[t.body + 1] >= 0x80)) {
    throw new DerError(`non-minimal INTEGER at offset ${t.start}`);
  }
  let v = buf[t.body] >= 0x80 ? buf[t.body] - 256 : buf[t.body];
  for (let i = t.body + 1; i < t.end; i++) v = v * 256 + buf[i];
  return v;
}

/** Number of octets of a DER length field for a content length. */
export function lengthSize(len: number): number {
  if (len < 0x80) return 1;
  if (len < 0x100) return 2;
  if (len < 0x10000) return 3;
  if (len < 0x1000000) return 4;
  return 5;
}

/** Size of a whole TLV with `len` content octets. */
export function tlvSize(len: number): number {
  return 1 + lengthSize(len) + len;
}

/** Writes tag and length at `pos`; returns the offset of the contents. */
export function writeHeader(out: Uint8Array, pos: number, tag: number, len: number): number {
  out[pos++] = tag;
  if (len < 0x80) {
    out[pos++] = len;
    return pos;
  }
  const n = lengthSize(len) - 1;
  out[pos++] = 0x80 | n;
  for (let i = n - 1; i >= 0; i--) out[pos++] = (len / 2 ** (8 * i)) & 0xff;
  return pos;
}

/** A complete TLV around existing content octets (for values built once, off the hot path). */
export function encodeTlv(tag: number, ...content: Uint8Array[]): Buffer {
  let len = 0;
  for (const c of content) len += c.length;
  const out = Buffer.allocUnsafe(tlvSize(len));
  let pos = writeHeader(out, 0, tag, len);
  for (const c of content) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

/** DER OBJECT IDENTIFIER TLV for a dotted OID string. */
export function encodeOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => {
    if (!/^\d+$/.test(a)) throw new Error(`bad OID ${dotted}`);
    return Number(a);
  });
  if (arcs.length < 2) throw new Error(`bad OID ${dotted}`);
  const bytes: number[] = [];
  const push = (v: number): void => {
    const tmp = [v & 0x7f];
    for (v = Math.floor(v / 128); v > 0; v = Math.floor(v / 128)) tmp.unshift(0x80 | (v & 0x7f));
    bytes.push(...tmp);
  };
  push(arcs[0] * 40 + arcs[1]);
  for (const a of arcs.slice(2)) push(a);
  return encodeTlv(TAG.OID, Uint8Array.from(bytes));
}

/** Checks OBJECT IDENTIFIER contents: non-empty, no 0x80 padding octet, last octet terminates. */
export function checkOidBody(buf: Uint8Array, t: Tlv): void {
  if (t.end <= t.body || (buf[t.end - 1] & 0x80) !== 0) throw new DerError(`malformed OID at offset ${t.start}`);
  for (let i = t.body; i < t.end; i++) {
    if (buf[i] === 0x80 && (i === t.body || (buf[i - 1] & 0x80) === 0)) throw new DerError(`non-minimal OID arc at offset ${t.start}`);
  }
}

const MAX_DEPTH = 16;

/**
 * Checks a TLV the schema leaves open (ASN.1 ANY: attribute values, algorithm parameters).
 * The library's BER parser decodes such values through and through and rejects the request
 * when it cannot, so an unchecked ANY would let the lean parser accept what the library refuses.
 * This accepts a DER subset that the library is known to read: constructed SEQUENCE, SET and
 * context-tagged values (recursively), the common primitive types with well-formed contents,
 * and opaque context-tagged primitives. Anything else is refused.
 */
export function checkAny(buf: Uint8Array, t: Tlv, depth = 0): void {
  if (depth > MAX_DEPTH) throw new DerError(`nesting deeper than ${MAX_DEPTH} at offset ${t.start}`);
  const len = t.end - t.body;
  const tag = t.tag;
  if (tag === TAG.SEQUENCE || tag === TAG.SET || (tag & 0xe0) === 0xa0) {
    for (let p = t.body; p < t.end;) {
      const c = readTlv(buf, p, t.end);
      checkAny(buf, c, depth + 1);
      p = c.end;
    }
    return;
  }
  if ((tag & 0xe0) === 0x80) return; // context-specific primitive: opaque octets
  switch (tag) {
    case TAG.BOOLEAN:
      if (len !== 1 || (buf[t.body] !== 0 && buf[t.body] !== 0xff)) break;
      return;
    case TAG.INTEGER:
      if (len < 1 || (len > 1 && (buf[t.body] === 0 ? buf[t.body + 1] < 0x80 : buf[t.body] === 0xff && buf[t.body + 1] >= 0x80))) break;
      return;
    case TAG.BIT_STRING:
      if (len < 1 || buf[t.body] > 7 || (len === 1 && buf[t.body] !== 0)) break;
      return;
    case TAG.NULL:
      if (len !== 0) break;
      return;
    case TAG.OID:
      checkOidBody(buf, t);
      return;
    case TAG.OCTET_STRING:
    case 0x0c: // UTF8String
    case 0x12: // NumericString
    case 0x13: // PrintableString
    case 0x14: // TeletexString
    case 0x16: // IA5String
    case 0x1a: // VisibleString
      return;
    case 0x1e: // BMPString: UTF-16 code units
      if (len % 2 !== 0) break;
      return;
    case 0x1c: // UniversalString: UTF-32 code points
      if (len % 4 !== 0) break;
      return;
  }
  throw new DerError(`value with tag 0x${tag.toString(16)} at offset ${t.start} is not accepted here`);
}
