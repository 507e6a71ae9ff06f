import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';

/**
 * An Istio CA client written from the API's field numbers alone, sharing nothing with the server's
 * definitions: if the server's wire format drifted, these tests would see it.
 */
const PROTO = `
syntax = "proto3";
package istio.v1.auth;
import "google/protobuf/struct.proto";
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

const root = protobuf.parse(PROTO, { keepCase: true }).root;
// protobufjs ships google.protobuf.Struct among its "common" types; add it to this root.
root.addJSON(protobuf.common.get('google/protobuf/struct.proto')!.nested!);
const Req = root.lookupType('istio.v1.auth.IstioCertificateRequest');
const Res = root.lookupType('istio.v1.auth.IstioCertificateResponse');

export interface CaRequest {
  csr: string;
  ttlSeconds?: number;
  metadata?: Record<string, string>;
}

export interface CaResponse {
  certChain: string[];
  roots: string[];
}

export interface CallOptions {
  token?: string;
  headers?: Record<string, string>;
}

export class IstioCaClient {
  private readonly client: grpc.Client;

  constructor(address: string, creds: grpc.ChannelCredentials, options: grpc.ChannelOptions = {}) {
    this.client = new grpc.Client(address, creds, options);
  }

  /** TLS client trusting `rootPem`, optionally presenting a client certificate; server name defaults to the address host. */
  static tls(address: string, rootPem: string, o: { certChainPem?: string; keyPem?: string; serverName?: string } = {}): IstioCaClient {
    const creds = grpc.credentials.createSsl(
      Buffer.from(rootPem),
      o.keyPem ? Buffer.from(o.keyPem) : null,
      o.certChainPem ? Buffer.from(o.certChainPem) : null,
    );
    return new IstioCaClient(
      address,
      creds,
      o.serverName ? { 'grpc.ssl_target_name_override': o.serverName, 'grpc.default_authority': o.serverName } : {},
    );
  }

  createCertificate(r: CaRequest, o: CallOptions = {}): Promise<CaResponse> {
    const md = new grpc.Metadata();
    if (o.token) md.set('authorization', `Bearer ${o.token}`);
    for (const [k, v] of Object.entries(o.headers ?? {})) md.set(k, v);
    const fields: Record<string, { stringValue: string }> = {};
    for (const [k, v] of Object.entries(r.metadata ?? {})) fields[k] = { stringValue: v };
    const msg = Req.fromObject({ csr: r.csr, validity_duration: r.ttlSeconds ?? 0, metadata: { fields } });
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        '/istio.v1.auth.IstioCertificateService/CreateCertificate',
        (m: protobuf.Message) => Buffer.from(Req.encode(m).finish()),
        (b: Buffer) => Res.toObject(Res.decode(b), { defaults: true }) as { cert_chain: string[]; root_cert?: { ca_cert: string[] } },
        msg,
        md,
        { deadline: Date.now() + 10_000 },
        (err, res) => (err ? reject(err) : resolve({ certChain: res!.cert_chain, roots: res!.root_cert?.ca_cert ?? [] })),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}
