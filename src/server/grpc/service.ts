import { bearerToken } from '../../auth/index.js';
import type { SignResult } from '../../ca/authority.js';
import type { IssuanceService } from '../../ca/issuance.js';
import { toMeshcaError } from '../../errors.js';
import { MeshcaError } from '../../pki/errors.js';
import type { UnaryHandler } from './h2.js';
import { decodeRequest, encodeResponse, type CertificateRequest } from './proto.js';

export interface HandlerLogger {
  debug(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
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
    // returned in the same turn, with no promise in between (dispatch in call.ts sends it at once).
    if (!(r instanceof Promise)) return encode(r);
    return r.then(encode, (e: unknown) => {
      throw logged(e, call.peer, log);
    });
  };
}
