import { METHOD_PATH, RequestType, ResponseType } from '../proto/istio-ca.js';

/** The one method the agent calls. */
export const CREATE_CERTIFICATE_PATH = METHOD_PATH;

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
