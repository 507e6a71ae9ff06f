import type * as grpc from '@grpc/grpc-js';
import { bearerToken } from '../../auth/index.js';
import type { SignResult } from '../../ca/authority.js';
import type { IssuanceService } from '../../ca/issuance.js';
import { grpcStatusOf, toMeshcaError } from '../../errors.js';
import { MeshcaError } from '../../pki/errors.js';
import type { UnaryHandler } from './h2.js';
import { METHOD_PATH, decodeRequest, encodeResponse, type CertificateRequest, type CertificateResponse } from './proto.js';

/** The Istio CA service definition, built by hand so that the wire format lives in one file (proto.ts). */
export const CA_SERVICE: grpc.ServiceDefinition = {
  CreateCertificate: {
    path: METHOD_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: () => {
      throw new Error('server-side definition: requests are never serialized here');
    },
    requestDeserialize: decodeRequest,
    responseSerialize: encodeResponse,
    responseDeserialize: () => {
      throw new Error('server-side definition: responses are never deserialized here');
    },
    originalName: 'createCertificate',
  } satisfies grpc.MethodDefinition<CertificateRequest, CertificateResponse>,
};

function header(md: grpc.Metadata, name: string): string | undefined {
  const v = md.get(name)[0];
  return v === undefined ? undefined : String(v);
}

export interface HandlerLogger {
  debug(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Transport only: pulls credentials out of the call, hands the request to the issuance service, maps errors to gRPC status. */
export function createCertificateHandler(service: IssuanceService, log?: HandlerLogger): grpc.handleUnaryCall<CertificateRequest, CertificateResponse> {
  return (call, callback) => {
    const peer = call.getAuthContext?.()?.sslPeerCertificate?.raw;
    const md = call.request.metadata;
    const clusterId = typeof md.ClusterID === 'string' ? md.ClusterID : header(call.metadata, 'clusterid');
    Promise.resolve(
      service.issue({
        credentials: { token: bearerToken(header(call.metadata, 'authorization')), peerCertDer: peer },
        csr: call.request.csr,
        ttlSeconds: call.request.validitySeconds,
        metadata: md,
        clientCluster: clusterId,
      }),
    ).then(
      (r) => callback(null, { certChain: r.chain, roots: r.roots }),
      (e: unknown) => {
        const err = logged(e, call.getPeer(), log);
        callback({ code: grpcStatusOf(err), details: err.message });
      },
    );
  };
}

/** A failed call as the transports answer it, logged: errors of ours loudly, refusals at debug. */
function logged(e: unknown, peer: string, log: HandlerLogger | undefined): MeshcaError {
  const err = toMeshcaError(e);
  if (err.code === 'internal') log?.error({ err, peer }, 'certificate request failed');
  else log?.debug({ reason: err.reason, peer }, 'certificate request refused');
  return err;
}

const encode = (r: SignResult): Buffer => encodeResponse({ certChain: r.chain, roots: r.roots });

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The same method on the hand-written HTTP/2 transport (h2.ts): decode, issue, encode. */
export function h2CreateCertificateHandler(service: IssuanceService, log?: HandlerLogger): UnaryHandler {
  return (call) => {
    let req: CertificateRequest;
    try {
      req = decodeRequest(call.message);
    } catch (e) {
      throw new MeshcaError('internal', 'bad_message', `cannot decode IstioCertificateRequest: ${(e as Error).message}`, { cause: e });
    }
    const md = req.metadata;
    const clusterId = typeof md.ClusterID === 'string' ? md.ClusterID : headerValue(call.headers['clusterid']);
    const r = service.issue({
      credentials: { token: bearerToken(headerValue(call.headers.authorization)), peerCertDer: call.peerCertDer },
      csr: req.csr,
      ttlSeconds: req.validitySeconds,
      metadata: md,
      clientCluster: clusterId,
    });
    // Answered synchronously (a cached token, the local signer): the response is encoded and
    // returned in the same turn, with no promise in between (dispatch in h2.ts sends it at once).
    if (!(r instanceof Promise)) return encode(r);
    return r.then(encode, (e: unknown) => {
      throw logged(e, call.peer, log);
    });
  };
}
