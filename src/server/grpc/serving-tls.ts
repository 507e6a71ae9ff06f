import type { ServingCertificate, ServingIssuer } from '../../ca/serving.js';

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

/**
 * The gRPC serving certificate, renewed at half life (as workloads do) and pushed to the running
 * server. Where it comes from is the material source's business (ServingIssuer): signed here, or
 * by the upstream in RA mode. A failed renewal keeps the current certificate and retries.
 */
export class ServingTls {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly listeners = new Set<(m: ServingMaterial) => void>();
  current: ServingCertificate | undefined;
  material: ServingMaterial | undefined;

  private constructor(
    private readonly issuer: ServingIssuer,
    private readonly o: ServingTlsOptions,
  ) {}

  /** Resolves once the first certificate is issued; the server cannot serve TLS without it. */
  static async start(issuer: ServingIssuer, o: ServingTlsOptions): Promise<ServingTls> {
    const t = new ServingTls(issuer, o);
    await t.renew();
    return t;
  }

  /** Whether a new signing material calls for a new certificate (see ServingIssuer.followsMaterial). */
  get followsMaterial(): boolean {
    return this.issuer.followsMaterial;
  }

  /** Called with every new serving certificate (the gRPC server swaps its TLS context). */
  subscribe(l: (m: ServingMaterial) => void): void {
    this.listeners.add(l);
  }

  async renew(): Promise<void> {
    const got = await this.issuer.issue(this.o.sans, this.o.ttlSeconds, this.o.now());
    const c = got.certificate;
    this.current = c;
    this.material = { certChainPem: c.certChainPem, keyPem: c.keyPem, trustedCaPem: got.trustedCaPem };
    for (const l of this.listeners) l(this.material);
    this.o.onIssue?.(c);
    const by = this.issuer.issuedBy ? ` by ${this.issuer.issuedBy}` : '';
    this.o.log?.info({ sans: c.sans, notAfter: c.notAfter.toISOString() }, `serving certificate issued${by}`);
    this.schedule(Math.max(1000, (c.notAfter.getTime() - this.o.now().getTime()) / 2));
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    // setTimeout takes at most ~24.8 days; a longer wait is reached in steps.
    const step = Math.min(ms, 2 ** 31 - 1);
    this.timer = setTimeout(() => {
      if (step < ms) return this.schedule(ms - step);
      this.renew().catch((e: unknown) => {
        const from = this.issuer.issuedBy ? ` from ${this.issuer.issuedBy}` : '';
        this.o.log?.error({ err: e }, `serving certificate renewal${from} failed; retrying`);
        this.schedule(this.issuer.retryMs);
      });
    }, step);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
