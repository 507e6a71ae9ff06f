import protobuf from 'protobufjs';

/**
 * The Istio CA API messages, declared here rather than loaded from a .proto file so that the
 * agent has no runtime file dependency. Struct/Value are restated under their real package
 * name: the wire format only depends on field numbers, so this is the genuine google.protobuf.Struct.
 */
const PROTO = `
syntax = "proto3";
package istio.v1.auth;
message IstioCertificateRequest {
  string csr = 1;
  int64 validity_duration = 3;
  google.protobuf.Struct metadata = 4;
}
message IstioCertificateResponse {
  repeated string cert_chain = 1;
  Roots root_cert = 2;
}
message Roots { repeated string ca_cert = 1; }
`;

const STRUCT = `
syntax = "proto3";
package google.protobuf;
message Struct { map<string, Value> fields = 1; }
message Value {
  oneof kind {
    int32 null_value = 1;
    double number_value = 2;
    string string_value = 3;
    bool bool_value = 4;
    Struct struct_value = 5;
    ListValue list_value = 6;
  }
}
message ListValue { repeated Value values = 1; }
`;

export const CREATE_CERTIFICATE_PATH = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

const root = new protobuf.Root();
protobuf.parse(STRUCT, root, { keepCase: true });
protobuf.parse(PROTO, root, { keepCase: true });
const RequestType = root.lookupType('istio.v1.auth.IstioCertificateRequest');
const ResponseType = root.lookupType('istio.v1.auth.IstioCertificateResponse');

export interface IstioCertificateRequest {
  csr: string;
  /** Seconds; 0 or absent lets the server pick its default TTL. */
  validityDuration?: number;
  /** String-valued metadata (ClusterID, WorkloadName, ...). */
  metadata?: Record<string, string>;
}

export interface IstioCertificateResponse {
  certChain: string[];
  /** Every trusted root when the server sets field 2; empty for older servers. */
  rootCerts: string[];
}

export function encodeRequest(req: IstioCertificateRequest): Buffer {
  const fields: Record<string, { string_value: string }> = {};
  for (const [k, v] of Object.entries(req.metadata ?? {})) fields[k] = { string_value: v };
  const msg = RequestType.fromObject({
    csr: req.csr,
    validity_duration: req.validityDuration ?? 0,
    ...(Object.keys(fields).length > 0 ? { metadata: { fields } } : {}),
  });
  return Buffer.from(RequestType.encode(msg).finish());
}

export function decodeRequest(buf: Uint8Array): IstioCertificateRequest {
  const o = RequestType.toObject(RequestType.decode(buf), { longs: Number, defaults: true }) as {
    csr: string;
    validity_duration: number;
    metadata?: { fields?: Record<string, { string_value?: string }> };
  };
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(o.metadata?.fields ?? {})) {
    if (typeof v.string_value === 'string') metadata[k] = v.string_value;
  }
  return { csr: o.csr, validityDuration: o.validity_duration, metadata };
}

export function encodeResponse(res: IstioCertificateResponse): Buffer {
  const msg = ResponseType.fromObject({
    cert_chain: res.certChain,
    ...(res.rootCerts.length > 0 ? { root_cert: { ca_cert: res.rootCerts } } : {}),
  });
  return Buffer.from(ResponseType.encode(msg).finish());
}

export function decodeResponse(buf: Uint8Array): IstioCertificateResponse {
  const o = ResponseType.toObject(ResponseType.decode(buf), { arrays: true }) as {
    cert_chain: string[];
    root_cert?: { ca_cert?: string[] };
  };
  return { certChain: o.cert_chain, rootCerts: o.root_cert?.ca_cert ?? [] };
}
