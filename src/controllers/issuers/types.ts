import type { KeyObject } from 'node:crypto';
import type { CaState } from '../../ca/state.js';
import type { ParsedCertificate } from '../../pki/certificate.js';
import type { AwsPcaIssuerSpec, KeyUsage } from '../../resources/certmanager.js';
import type { SecretSink } from '../../resources/secrets.js';
import type { Upstream } from '../../upstream/index.js';

export interface SignRequest {
  csrPem: string;
  durationMs: number;
  isCA: boolean;
  usages: KeyUsage[];
  now: Date;
  /** The requester's key: only a selfSigned issuer needs it (it signs with the subject's own key). */
  privateKey?: KeyObject;
}

export interface SignResult {
  /** The issued certificate first, then intermediates; no self-signed root. */
  chain: ParsedCertificate[];
  /** The top of the hierarchy (the root when known): what goes into ca.crt. */
  ca: ParsedCertificate;
}

/** One issuer type's signing logic, apart from the controllers (cert-manager's split). */
export interface IssuerBackend {
  /** Readiness: resolves with cert-manager's Ready reason and message, or throws with why not. */
  verify(): Promise<{ reason: string; message: string }>;
  sign(req: SignRequest): Promise<SignResult>;
  /** Reason written on the Ready condition when verify fails. */
  readonly notReadyReason: string;
}

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** Builds the AWS PCA upstream for an AWSPCAIssuer; tests pass a fake, the CLI the real one. */
export type UpstreamFactory = (spec: AwsPcaIssuerSpec, credentials: AwsCredentials | undefined, now: () => Date) => Promise<Upstream>;

export interface IssuerDeps {
  secrets: SecretSink;
  state: CaState;
  upstreams: UpstreamFactory;
  now: Date;
}

/** Where cluster-scoped issuers find their secrets, like cert-manager's --cluster-resource-namespace. */
export const CLUSTER_RESOURCE_NAMESPACE = 'cert-manager';
