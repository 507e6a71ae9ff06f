import { METHOD_PATH, RequestType, ResponseType, SERVICE_NAME } from '../../proto/istio-ca.js';

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
  const m = RequestType.decode(buf) as unknown as { csr?: string; validity_duration?: number | { toNumber(): number }; metadata?: { fields?: Record<string, PbValue> } };
  const v = m.validity_duration;
  return {
    csr: m.csr ?? '',
    validitySeconds: v === undefined || v === null ? 0 : typeof v === 'number' ? v : v.toNumber(),
    metadata: fromStruct(m.metadata),
  };
}

export function encodeResponse(r: CertificateResponse): Buffer {
  return Buffer.from(ResponseType.encode({ cert_chain: r.certChain, root_cert: { ca_cert: r.roots } }).finish());
}
