import protobuf from 'protobufjs';

/**
 * Istio's CA API (security/proto/providers/... istio.v1.auth), with google.protobuf.Struct inlined so
 * that nothing is read from disk at run time. Field numbers are the wire contract: csr = 1,
 * validity_duration = 3, metadata = 4; cert_chain = 1, root_cert = 2.
 */
const PROTO = `
syntax = "proto3";
package google.protobuf;
message Struct { map<string, Value> fields = 1; }
message Value {
  oneof kind {
    NullValue null_value = 1;
    double number_value = 2;
    string string_value = 3;
    bool bool_value = 4;
    Struct struct_value = 5;
    ListValue list_value = 6;
  }
}
enum NullValue { NULL_VALUE = 0; }
message ListValue { repeated Value values = 1; }
`;

const ISTIO = `
syntax = "proto3";
package istio.v1.auth;
message IstioCertificateRequest {
  string csr = 1;
  int64 validity_duration = 3;
  google.protobuf.Struct metadata = 4;
}
message Roots { repeated string ca_cert = 1; }
message IstioCertificateResponse {
  repeated string cert_chain = 1;
  Roots root_cert = 2;
}
`;

export const SERVICE_NAME = 'istio.v1.auth.IstioCertificateService';
export const METHOD_PATH = `/${SERVICE_NAME}/CreateCertificate`;

const root = new protobuf.Root();
protobuf.parse(PROTO, root, { keepCase: true });
protobuf.parse(ISTIO, root, { keepCase: true });
const RequestType = root.lookupType('istio.v1.auth.IstioCertificateRequest');
const ResponseType = root.lookupType('istio.v1.auth.IstioCertificateResponse');

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
