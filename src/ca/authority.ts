import type { AuthResult } from '../auth/types.js';
import { formatDuration } from '../config/duration.js';
import type { ParsedCertificate } from '../pki/certificate.js';
import { parseCsr } from '../pki/csr.js';
import { MeshcaError, invalid } from '../pki/errors.js';
import { issueWorkloadCertificate, type IssuedCertificate, type Signer } from '../pki/issue.js';
import { parseSpiffeId, parseWorkloadId } from '../pki/spiffe.js';

export interface Policy {
  trustDomain: string;
  /** Trust domains that name the same workloads (during a trust-domain migration). */
  trustDomainAliases: string[];
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
  maxCsrBytes: number;
  /** Callers (SPIFFE IDs) that may ask for another workload's certificate with ImpersonatedIdentity (ztunnel, istiod). */
  impersonationAllow: string[];
}

/** The signing material: the issuing CA with its chain, and every root the mesh should trust. */
export interface SigningMaterial {
  signer: Signer;
  roots: ParsedCertificate[];
}

export interface SignRequest {
  csr: string;
  caller: AuthResult;
  /** Requested lifetime; 0 means the default. */
  ttlSeconds: number;
  /** The request's `metadata` Struct as plain values (ClusterID, ImpersonatedIdentity, ...). */
  metadata?: Record<string, unknown>;
}

export interface SignResult {
  issued: IssuedCertificate;
  /** Leaf, intermediates, root last (Istio's cert_chain). */
  chain: string[];
  /** Every trusted root (Istio's root_cert). */
  roots: string[];
  /** The identity certified. */
  identity: string;
}

export const IMPERSONATED_IDENTITY = 'ImpersonatedIdentity';

/**
 * The signing authority: signer + policy. Synchronous and free of I/O so that it can run on the hot
 * path (in every --workers process alike): the transport authenticates, this decides and signs.
 */
export class Authority {
  private material: SigningMaterial;
  private rootPems: string[];
  /** cert_chain entries above the leaf, when they differ from the signer's own chain (see chainTail). */
  private tail: string[] | undefined;

  constructor(
    material: SigningMaterial,
    readonly policy: Policy,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.material = material;
    this.rootPems = material.roots.map((r) => r.pem);
    this.tail = chainTail(material);
  }

  /** Swaps the signing material (a renewed intermediate, a root rotation) without a restart. */
  setMaterial(m: SigningMaterial): void {
    this.material = m;
    this.rootPems = m.roots.map((r) => r.pem);
    this.tail = chainTail(m);
  }

  get signer(): Signer {
    return this.material.signer;
  }

  get roots(): ParsedCertificate[] {
    return this.material.roots;
  }

  /** False while the material is a stand-in whose roots nobody should trust (nothing to publish yet). */
  rootsKnown(): boolean {
    return true;
  }

  /** Why the authority cannot sign right now, or undefined when it can. */
  notReadyReason(): string | undefined {
    const c = this.material.signer.cert;
    const t = this.now().getTime();
    if (t > c.notAfter.getTime()) return `the issuing CA expired at ${c.notAfter.toISOString()}`;
    if (t < c.notBefore.getTime()) return `the issuing CA is not valid before ${c.notBefore.toISOString()}`;
    return undefined;
  }

  /** The lifetime to grant: the default for 0, a refusal naming both values above the maximum. */
  ttlFor(requested: number): number {
    if (!Number.isFinite(requested) || requested < 0)
      throw invalid('bad_ttl', `validity_duration must be a non-negative number of seconds, got ${requested}`);
    if (requested === 0) return this.policy.defaultTtlSeconds;
    const max = this.policy.maxTtlSeconds;
    if (requested > max) {
      throw invalid(
        'ttl_too_long',
        `requested TTL ${formatDuration(requested)} (${requested}s) is above the maximum TTL ${formatDuration(max)} (${max}s)`,
      );
    }
    return requested;
  }

  checkCsrSize(csr: string): void {
    const n = Buffer.byteLength(csr, 'utf8');
    if (n > this.policy.maxCsrBytes) throw invalid('csr_too_large', `CSR is ${n} bytes, above the ${this.policy.maxCsrBytes}-byte limit`);
    if (n === 0) throw invalid('malformed_csr', 'the request carries no CSR');
  }

  /** The identities this request may certify: the caller's (with trust-domain aliases), or an allowed impersonation. */
  identitiesFor(caller: AuthResult, metadata: Record<string, unknown> | undefined): string[] {
    const imp = metadata?.[IMPERSONATED_IDENTITY];
    if (imp !== undefined && imp !== '') {
      if (!this.policy.impersonationAllow.includes(caller.caller)) {
        throw new MeshcaError(
          'permission_denied',
          'impersonation_denied',
          `caller ${caller.caller} may not request certificates for other identities (ImpersonatedIdentity ${String(imp)})`,
        );
      }
      if (typeof imp !== 'string' || !this.isOurWorkload(imp)) {
        throw invalid(
          'bad_impersonated_identity',
          `ImpersonatedIdentity ${JSON.stringify(imp)} is not a workload SPIFFE ID of trust domain ${this.policy.trustDomain}`,
        );
      }
      return this.withAliases([imp]);
    }
    return this.withAliases(caller.identities);
  }

  private isOurWorkload(id: string): boolean {
    try {
      const w = parseWorkloadId(id);
      return w !== undefined && [this.policy.trustDomain, ...this.policy.trustDomainAliases].includes(w.trustDomain);
    } catch {
      return false;
    }
  }

  /** spiffe://td/ns/a/sa/b also allows spiffe://<alias>/ns/a/sa/b for every configured alias, and the reverse. */
  private withAliases(ids: string[]): string[] {
    const domains = [this.policy.trustDomain, ...this.policy.trustDomainAliases];
    if (domains.length === 1) return ids;
    const out = new Set(ids);
    for (const id of ids) {
      let p;
      try {
        p = parseSpiffeId(id);
      } catch {
        continue;
      }
      if (!domains.includes(p.trustDomain)) continue;
      for (const d of domains) out.add(`spiffe://${d}${p.path}`);
    }
    return [...out];
  }

  sign(req: SignRequest): SignResult {
    const notReady = this.notReadyReason();
    if (notReady) throw new MeshcaError('unavailable', 'ca_not_ready', `the CA cannot sign: ${notReady}`);
    this.checkCsrSize(req.csr);
    const ttlSeconds = this.ttlFor(req.ttlSeconds);
    const identities = this.identitiesFor(req.caller, req.metadata);
    const issued = issueWorkloadCertificate(this.material.signer, { csr: req.csr, identities, ttlSeconds, now: this.now() });
    const chain = this.tail ? [issued.chain[0], ...this.tail] : issued.chain;
    return { issued, chain, roots: this.rootPems, identity: issued.sans.uris?.[0] ?? '' };
  }
}

/**
 * istiod's cert_chain ends with the whole content of root-cert.pem as one entry, so that a client
 * reading only cert_chain (no root_cert) also trusts every root during a rotation. With one root
 * that is already the signer's chain (undefined: nothing to rewrite on the hot path); otherwise
 * the issuing CA, the intermediates above it, then every root in one PEM entry.
 */
function chainTail(m: SigningMaterial): string[] | undefined {
  const above = m.signer.chain;
  const last = above[above.length - 1];
  if (m.roots.length === 0) return undefined;
  if (m.roots.length === 1 && last && last.der.equals(m.roots[0].der)) return undefined;
  const isRoot = (c: ParsedCertificate) => m.roots.some((r) => r.der.equals(c.der));
  return [m.signer.cert.pem, ...above.filter((c) => !isRoot(c)).map((c) => c.pem), m.roots.map((r) => r.pem).join('')];
}

/** The identity a CSR asks for, for the audit of a refusal; '' when the CSR does not parse. */
export function requestedIdentity(csr: string, maxBytes: number): string {
  if (!csr || csr.length > maxBytes) return '';
  try {
    return parseCsr(csr).sans.uris[0] ?? '';
  } catch {
    return '';
  }
}
