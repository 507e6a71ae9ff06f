import { METHOD_PATH, RequestType, SERVICE_NAME } from '../../proto/istio-ca.js';

export { METHOD_PATH, SERVICE_NAME };

export interface CertificateRequest {
  csr: string;
  validitySeconds: number;
  metadata: Record<string, unknown>;
}

export interface CertificateResponse {
  certChain: string[];
  roots: string[];
}

interface PbValue {
  null_value?: number;
  number_value?: number;
  string_value?: string;
  bool_value?: boolean;
  struct_value?: { fields?: Record<string, PbValue> };
  list_value?: { values?: PbValue[] };
}

function fromValue(v: PbValue): unknown {
  if (v.string_value !== undefined) return v.string_value;
  if (v.number_value !== undefined) return v.number_value;
  if (v.bool_value !== undefined) return v.bool_value;
  if (v.struct_value !== undefined) return fromStruct(v.struct_value);
  if (v.list_value !== undefined) return (v.list_value.values ?? []).map(fromValue);
  return null;
}

function fromStruct(s: { fields?: Record<string, PbValue> } | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = fromValue(v);
  return out;
}

export function decodeRequest(buf: Buffer): CertificateRequest {
  const m = RequestType.decode(buf) as unknown as {
    csr?: string;
    validity_duration?: number | { toNumber(): number };
    metadata?: { fields?: Record<string, PbValue> };
  };
  const v = m.validity_duration;
  return {
    csr: m.csr ?? '',
    validitySeconds: v === undefined || v === null ? 0 : typeof v === 'number' ? v : v.toNumber(),
    metadata: fromStruct(m.metadata),
  };
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n >>>= 7;
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, p: number, n: number): number {
  while (n >= 0x80) {
    buf[p++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[p++] = n;
  return p;
}

/** Writes `tag`, the byte length and the UTF-8 of each string (a repeated string field). */
function writeStrings(buf: Buffer, p: number, tag: number, strings: readonly string[], lengths: readonly number[]): number {
  for (let i = 0; i < strings.length; i++) {
    buf[p++] = tag;
    p = writeVarint(buf, p, lengths[i]);
    p += buf.write(strings[i], p, 'utf8');
  }
  return p;
}

function stringsSize(lengths: readonly number[]): number {
  let size = 0;
  for (const n of lengths) size += 1 + varintSize(n) + n;
  return size;
}

/**
 * IstioCertificateResponse: cert_chain (1, repeated string) then root_cert (2, Roots { ca_cert = 1,
 * repeated string }), always present, as protobufjs writes it from `{ cert_chain, root_cert }`
 * (proto.test.ts checks the bytes against it). Written by hand because it runs once per
 * certificate, and protobufjs makes a JavaScript pass over every character to size it, a fork for
 * the nested message and a final copy.
 */
export function encodeResponse(r: CertificateResponse): Buffer {
  const chainLengths = r.certChain.map((s) => Buffer.byteLength(s, 'utf8'));
  const rootLengths = r.roots.map((s) => Buffer.byteLength(s, 'utf8'));
  const rootsSize = stringsSize(rootLengths);
  const buf = Buffer.allocUnsafe(stringsSize(chainLengths) + 1 + varintSize(rootsSize) + rootsSize);
  let p = writeStrings(buf, 0, 0x0a, r.certChain, chainLengths);
  buf[p++] = 0x12;
  p = writeVarint(buf, p, rootsSize);
  p = writeStrings(buf, p, 0x0a, r.roots, rootLengths);
  if (p !== buf.length) throw new Error(`IstioCertificateResponse: wrote ${p} of ${buf.length} bytes`);
  return buf;
}
