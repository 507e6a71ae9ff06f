import type { KeyObject } from 'node:crypto';
import type { ParsedCertificate } from '../pki/certificate.js';
import { parseCsr } from '../pki/csr.js';
import { invalid } from '../pki/errors.js';
import { DEFAULT_BACKDATE_SECONDS } from '../pki/profiles.js';
import type { SignIntermediateRequest, Upstream, UpstreamChain } from './contract.js';
import { signCsr } from './sign-csr.js';

/** A CA whose key is in this process: the signing certificate, its key, and the issuers above it. */
export interface KeyMaterial {
  cert: ParsedCertificate;
  key: KeyObject;
  /** Issuers above `cert`, nearest first, root last; empty when `cert` is the root. */
  chain: ParsedCertificate[];
}

/**
 * The part shared by the local and files upstreams: sign intermediates with a key held in memory.
 * Material is (re)loaded on every call, so replacing the files on disk takes effect without a restart.
 */
export class KeyUpstream implements Upstream {
  constructor(
    readonly type: string,
    readonly source: string,
    private readonly load: () => KeyMaterial,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async check(): Promise<void> {
    const m = this.load();
    if (m.cert.notAfter.getTime() <= this.now().getTime()) {
      throw invalid(
        'upstream_expired',
        `${this.type} upstream ${this.source}: the signing certificate expired at ${m.cert.notAfter.toISOString()}`,
      );
    }
  }

  async signIntermediate(req: SignIntermediateRequest): Promise<UpstreamChain> {
    if (!(req.ttlSeconds > 0)) throw invalid('bad_ttl', `intermediate TTL must be positive, got ${req.ttlSeconds}s`);
    const m = this.load();
    const csr = parseCsr(req.csrPem, 'intermediate CSR');
    const now = this.now();
    const notBefore = new Date(Math.max(now.getTime() - DEFAULT_BACKDATE_SECONDS * 1000, m.cert.notBefore.getTime()));
    // Like createIntermediateCertificate: an intermediate never outlives its issuer, it is cut back.
    const notAfter = new Date(Math.min(now.getTime() + req.ttlSeconds * 1000, m.cert.notAfter.getTime()));
    const cert = signCsr({
      issuerCert: m.cert,
      issuerKey: m.key,
      csr,
      profile: { kind: 'ca', pathLen: req.pathLen ?? 0 },
      notBefore,
      notAfter,
      now,
    });
    return { cert, chain: [m.cert, ...m.chain] };
  }

  async roots(): Promise<ParsedCertificate[]> {
    const m = this.load();
    return [m.chain.length > 0 ? m.chain[m.chain.length - 1] : m.cert];
  }
}
