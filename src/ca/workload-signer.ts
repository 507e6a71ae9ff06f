import type { ParsedCertificate } from '../pki/certificate.js';
import { csrToPem, parseCsr } from '../pki/csr.js';
import { MeshcaError, invalid } from '../pki/errors.js';
import { authorizeCsrSans, refuseCaRequest } from '../pki/issue.js';
import type { Upstream, UpstreamChain } from '../upstream/index.js';
import { Authority, type SignRequest, type SignResult } from './authority.js';

/**
 * Signs one authenticated, rate-limited request. The local CA does not go through this: its
 * synchronous Authority.sign stays the hot path. Signers that wait on something remote (AWS PCA
 * in RA mode, a Kubernetes CSR) implement this, and IssuanceService awaits them instead.
 */
export interface WorkloadSigner {
  sign(req: SignRequest): Promise<SignResult>;
}

/** The Authority of RA mode: the same policy checks, but no key here; every certificate is signed upstream. */
export class RaAuthority extends Authority {
  override sign(_req: SignRequest): SignResult {
    throw new MeshcaError(
      'internal',
      'ra_mode',
      'this CA is a registration authority: workload certificates are signed by the upstream (RemoteWorkloadSigner), never locally',
    );
  }
}

export interface RemoteSignerHooks {
  /** Every certificate the upstream returned (to follow a change of the upstream's issuing CA). */
  onIssued?(chain: UpstreamChain): void;
  /** The upstream failed (not a policy refusal): for metrics and /readyz. */
  onError?(error: unknown): void;
}

/**
 * Registration-authority signing: meshca authenticates, authorizes and audits; the upstream
 * (AWS PCA in short-lived mode) signs. The CSR goes upstream unchanged, so the checks that local
 * signing makes by rewriting SANs must be made here, before anything leaves the process: the CSR
 * must name exactly one URI, the caller's own identity (or an allowed impersonation).
 */
export class RemoteWorkloadSigner implements WorkloadSigner {
  constructor(
    private readonly authority: Authority,
    private readonly upstream: Pick<Upstream, 'signWorkload' | 'source'>,
    private readonly roots: () => ParsedCertificate[],
    private readonly hooks: RemoteSignerHooks = {},
  ) {}

  async sign(req: SignRequest): Promise<SignResult> {
    const a = this.authority;
    a.checkCsrSize(req.csr);
    const ttlSeconds = a.ttlFor(req.ttlSeconds);
    const identities = a.identitiesFor(req.caller, req.metadata);
    const csr = parseCsr(req.csr);
    refuseCaRequest(csr);
    authorizeCsrSans(csr, identities);
    if (csr.sans.uris.length !== 1) {
      // Locally the caller's identity would be written in; PCA certifies the CSR's SANs as they are.
      throw invalid(
        'ra_needs_identity',
        `in RA mode the CSR must name exactly one SPIFFE ID (URI SAN), the caller's; it names ${csr.sans.uris.length}`,
      );
    }
    const identity = csr.sans.uris[0];
    let got: UpstreamChain;
    try {
      got = await this.upstream.signWorkload!({ csrPem: csrToPem(csr.der), ttlSeconds });
    } catch (e) {
      this.hooks.onError?.(e);
      throw e;
    }
    const leaf = got.cert;
    // The upstream's answer is checked like a chain from any other CA before a workload gets it.
    if (leaf.isCA || leaf.ext.san?.uris.length !== 1 || leaf.ext.san.uris[0] !== identity || !leaf.publicKey.equals(csr.publicKey)) {
      const e = new MeshcaError(
        'internal',
        'upstream_bad_certificate',
        `upstream ${this.upstream.source} returned a certificate that does not match the CSR (identity ${identity})`,
      );
      this.hooks.onError?.(e);
      throw e;
    }
    this.hooks.onIssued?.(got);
    const chain = [leaf.pem, ...got.chain.map((c) => c.pem)];
    return {
      issued: {
        certDer: leaf.der,
        certPem: leaf.pem,
        chain,
        serialHex: leaf.serialHex,
        notBefore: leaf.notBefore,
        notAfter: leaf.notAfter,
        keyInfo: csr.keyInfo,
        sans: { uris: [identity] },
      },
      chain,
      roots: this.roots().map((r) => r.pem),
      identity,
    };
  }
}
