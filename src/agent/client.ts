import { Client, Metadata, credentials, status, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { MeshcaError, type ErrorCode } from '../pki/errors.js';
import {
  CREATE_CERTIFICATE_PATH,
  decodeResponse,
  encodeRequest,
  type IstioCertificateRequest,
  type IstioCertificateResponse,
} from './proto.js';

/** How one call proves who the workload is. */
export type CallAuth = { kind: 'token'; token: string } | { kind: 'mtls'; certChainPem: string; keyPem: string };

/** The CA as the agent sees it; the loop depends on this, so tests can substitute a fake. */
export interface CaClient {
  /** Aborting `signal` cancels the call (the agent is shutting down). */
  createCertificate(req: IstioCertificateRequest, auth: CallAuth, signal?: AbortSignal): Promise<IstioCertificateResponse>;
}

export interface GrpcCaClientOptions {
  /** host:port of the CA. */
  address: string;
  /**
   * PEM roots that the CA's serving certificate must chain to; required unless plaintext. A
   * function is called for every call, so that roots learnt during a rotation are used (trust.ts).
   */
  rootPem?: string | (() => string);
  /** Name checked in the CA's certificate, as istio-agent does with istiod.istio-system.svc. */
  serverName: string;
  /** Local testing only: no TLS at all (tokens then travel in clear). */
  plaintext?: boolean;
  /** Sent as the ClusterID gRPC header, which istiod uses to pick the cluster's token reviewer. */
  clusterId?: string;
  timeoutMs?: number;
  /** Where rootPem came from (the --ca-root file), named when the CA's certificate does not chain to it. */
  rootSource?: string;
}

const GRPC_TO_CODE: Partial<Record<status, ErrorCode>> = {
  [status.INVALID_ARGUMENT]: 'invalid_argument',
  [status.UNAUTHENTICATED]: 'unauthenticated',
  [status.PERMISSION_DENIED]: 'permission_denied',
  [status.NOT_FOUND]: 'not_found',
  [status.ALREADY_EXISTS]: 'already_exists',
  [status.FAILED_PRECONDITION]: 'failed_precondition',
  [status.RESOURCE_EXHAUSTED]: 'resource_exhausted',
  [status.UNAVAILABLE]: 'unavailable',
  [status.DEADLINE_EXCEEDED]: 'deadline_exceeded',
};

/** Keeps the server's words: "PERMISSION_DENIED: <details>" is what the operator needs to see. */
export function fromGrpcError(e: ServiceError): MeshcaError {
  const name = status[e.code] ?? `status ${e.code}`;
  // grpc-js appends an empty "Resolution note:" to connection errors; it only adds noise.
  const details = (e.details || e.message).replace(/\s*Resolution note:\s*$/, '');
  return new MeshcaError(GRPC_TO_CODE[e.code as status] ?? 'internal', `ca_${name.toLowerCase()}`, `${name}: ${details}`, {
    cause: e,
  });
}

// OpenSSL's words when the peer's chain does not end at one of the given roots.
const UNTRUSTED =
  /unable to get (local )?issuer certificate|self[- ]signed certificate in certificate chain|unable to verify the first certificate/i;

/** An untrusted CA certificate almost always means a wrong --ca-root: say which file was used. */
function explainTlsError(e: MeshcaError, rootSource: string | undefined): MeshcaError {
  if (!rootSource || !UNTRUSTED.test(e.message)) return e;
  return new MeshcaError(
    e.code,
    'ca_root_mismatch',
    `${e.message} (the CA's certificate does not chain to a root in --ca-root ${rootSource}: that file does not contain the CA's root)`,
    { cause: e },
  );
}

/**
 * The Istio CA API over gRPC. A fresh channel per call: the channel's TLS client certificate is
 * the credential for mTLS renewals and changes with every issuance, and calls are minutes to
 * hours apart, so there is nothing worth pooling.
 */
export function grpcCaClient(o: GrpcCaClientOptions): CaClient {
  if (!o.plaintext && !o.rootPem) {
    throw new MeshcaError('invalid_argument', 'no_ca_root', 'the CA root (--ca-root) is required unless --plaintext is given');
  }
  return {
    createCertificate(req, auth, signal) {
      let creds: ChannelCredentials;
      if (o.plaintext) {
        if (auth.kind === 'mtls') {
          return Promise.reject(
            new MeshcaError('invalid_argument', 'mtls_needs_tls', 'certificate authentication needs TLS; drop --plaintext'),
          );
        }
        creds = credentials.createInsecure();
      } else {
        let root: Buffer;
        try {
          root = Buffer.from(typeof o.rootPem === 'function' ? o.rootPem() : o.rootPem!);
        } catch (e) {
          return Promise.reject(e);
        }
        creds =
          auth.kind === 'mtls'
            ? credentials.createSsl(root, Buffer.from(auth.keyPem), Buffer.from(auth.certChainPem))
            : credentials.createSsl(root);
      }
      const channelOptions = o.plaintext ? {} : { 'grpc.ssl_target_name_override': o.serverName, 'grpc.default_authority': o.serverName };
      const client = new Client(o.address, creds, channelOptions);
      const md = new Metadata();
      if (auth.kind === 'token') md.set('authorization', `Bearer ${auth.token}`);
      if (o.clusterId) md.set('ClusterID', o.clusterId);
      const deadline = new Date(Date.now() + (o.timeoutMs ?? 15_000));
      return new Promise<IstioCertificateResponse>((resolve, reject) => {
        // Removed when the call ends: the agent passes one signal to every renewal for its whole life.
        const onAbort = (): void => call.cancel();
        const call = client.makeUnaryRequest(CREATE_CERTIFICATE_PATH, encodeRequest, decodeResponse, req, md, { deadline }, (err, res) => {
          signal?.removeEventListener('abort', onAbort);
          client.close();
          if (err) reject(explainTlsError(fromGrpcError(err), o.rootSource));
          else if (!res) reject(new MeshcaError('internal', 'ca_empty_response', 'the CA returned an empty response'));
          else resolve(res);
        });
        if (signal?.aborted) call.cancel();
        else signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
  };
}
