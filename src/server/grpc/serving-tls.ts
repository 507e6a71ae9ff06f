import type { Authority } from '../../ca/authority.js';
import { issueServingCertificate, type ServingCertificate } from '../../ca/serving.js';

export interface ServingTlsOptions {
  sans: string[];
  ttlSeconds: number;
  now: () => Date;
  log?: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
  onIssue?: (c: ServingCertificate) => void;
}

export interface ServingMaterial {
  certChainPem: string;
  keyPem: string;
  /** CAs that client certificates (mTLS renewals) must chain to. */
  trustedCaPem: string;
}

/** Retry delay after a failed renewal: soon, but not in a tight loop. */
const RETRY_MS = 60_000;

/**
 * The gRPC serving certificate, issued from the authority's current signer and renewed at half
 * life (as workloads do) and pushed to the running server.
 */
export class ServingTls {
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(m: ServingMaterial) => void>();
  current: ServingCertificate | undefined;
  material: ServingMaterial | undefined;

  constructor(
    private readonly authority: Authority,
    private readonly o: ServingTlsOptions,
  ) {
    this.renew();
  }

  /** Called with every new serving certificate (the gRPC server swaps its TLS context). */
  subscribe(l: (m: ServingMaterial) => void): void {
    this.listeners.add(l);
  }

  /** Client certificates must chain to a root we trust and through our issuing CA. */
  private trustedCaPem(): string {
    const s = this.authority.signer;
    const certs = [s.cert, ...s.chain, ...this.authority.roots];
    return [...new Set(certs.map((c) => c.pem))].join('');
  }

  renew(): void {
    const now = this.o.now();
    const c = issueServingCertificate(this.authority.signer, this.o.sans, this.o.ttlSeconds, now);
    this.current = c;
    this.material = { certChainPem: c.certChainPem, keyPem: c.keyPem, trustedCaPem: this.trustedCaPem() };
    for (const l of this.listeners) l(this.material);
    this.o.onIssue?.(c);
    this.o.log?.info({ sans: c.sans, notAfter: c.notAfter.toISOString() }, 'serving certificate issued');
    this.schedule(Math.max(1000, (c.notAfter.getTime() - now.getTime()) / 2));
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    // setTimeout takes at most ~24.8 days; a longer wait is reached in steps.
    const step = Math.min(ms, 2 ** 31 - 1);
    this.timer = setTimeout(() => {
      if (step < ms) return this.schedule(ms - step);
      try {
        this.renew();
      } catch (e) {
        this.o.log?.error({ err: e }, 'serving certificate renewal failed; retrying');
        this.schedule(RETRY_MS);
      }
    }, step);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
