import type { ParsedCertificate } from '../pki/certificate.js';

/**
 * "Who signs our CA": one small contract, one folder per implementation (local, files, awspca,
 * k8s-csr). Like SPIRE's upstream authority plugins, an upstream only mints certificates and
 * reports its roots; rotation and scheduling live in meshca's core (src/ca/intermediate-manager.ts).
 */
export interface Upstream {
  /** The registry type name: "local", "files", "awspca", "k8s-csr". */
  readonly type: string;
  /** Where certificates come from, for logs and errors: a path, an ARN. */
  readonly source: string;
  /** Checks that the upstream can sign (reachable, active, right kind). Cheap enough to call at start. */
  check(): Promise<void>;
  /** Signs an intermediate CA from a CSR. */
  signIntermediate(req: SignIntermediateRequest): Promise<UpstreamChain>;
  /** Registration-authority mode: signs a workload CSR directly. Only some upstreams can. */
  signWorkload?(req: SignWorkloadRequest): Promise<UpstreamChain>;
  /** The root certificates the upstream chains to (usually one). */
  roots(): Promise<ParsedCertificate[]>;
  /** Releases connections; the upstream must not be used afterwards. */
  close?(): void;
}

/**
 * An upstream whose intermediate issuance is two steps another process can finish: a request that
 * carries a caller-chosen idempotency token and returns the certificate's name, then collection by
 * that name. Replicas use it so that a leader killed half-way costs no second certificate.
 */
export interface ResumableIssuer {
  /** Asks for the certificate; a repeat with the same token and request returns the same name. */
  requestIntermediate(req: SignIntermediateRequest & { token: string; at: Date }): Promise<string>;
  /** The certificate a request was answered with, checked against its CSR. */
  collectIntermediate(ref: string, csrPem: string, signal?: AbortSignal): Promise<UpstreamChain>;
}

export function isResumable(u: Upstream): u is Upstream & ResumableIssuer {
  const r = u as Partial<ResumableIssuer>;
  return typeof r.requestIntermediate === 'function' && typeof r.collectIntermediate === 'function';
}

export interface SignIntermediateRequest {
  /** PEM PKCS#10 request; its subject and public key are certified as they are. */
  csrPem: string;
  /** Wanted lifetime. An upstream may shorten it (issuer expiry, policy) but never lengthen it. */
  ttlSeconds: number;
  /** basicConstraints pathLen of the new CA; default 0 (it signs only workloads). */
  pathLen?: number;
  signal?: AbortSignal;
}

export interface SignWorkloadRequest {
  csrPem: string;
  ttlSeconds: number;
  signal?: AbortSignal;
}

export interface UpstreamChain {
  cert: ParsedCertificate;
  /** Issuers above `cert`, nearest first, ending with the root. */
  chain: ParsedCertificate[];
}

export interface UpstreamContext {
  /** State directory, for upstreams that keep material there (local). */
  stateDir?: string;
  /** Passphrase for encrypted keys on disk. */
  passphrase?: string;
  now?: () => Date;
  /** Warnings that should reach the operator (for example a SHORT_LIVED_CERTIFICATE CA used for intermediates). */
  warn?: (message: string) => void;
}
