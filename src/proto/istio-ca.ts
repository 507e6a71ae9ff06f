import protobuf from 'protobufjs';

/**
 * Istio's CA API (istio.v1.auth, security/proto/providers), with google.protobuf.Struct restated
 * under its real package name so that nothing is read from disk at run time; the wire format only
 * depends on field numbers: csr = 1, validity_duration = 3, metadata = 4; cert_chain = 1,
 * root_cert = 2. Shared by the server and the agent (the e2e tests keep their own copy on purpose,
 * to stay independent of this one).
 */
const STRUCT = `
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
protobuf.parse(STRUCT, root, { keepCase: true });
protobuf.parse(ISTIO, root, { keepCase: true });
export const RequestType = root.lookupType('istio.v1.auth.IstioCertificateRequest');
export const ResponseType = root.lookupType('istio.v1.auth.IstioCertificateResponse');
