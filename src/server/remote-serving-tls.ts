import { isIP } from 'node:net';
import type { ServingCertificate } from '../ca/serving.js';
import { certsToPem, type ParsedCertificate } from '../pki/certificate.js';
import { createCsr } from '../pki/csr.js';
import { generateKeyPair, privateKeyToPem } from '../pki/keys.js';
import type { Upstream, UpstreamChain } from '../upstream/index.js';
import { SHORT_LIVED_MAX_SECONDS } from '../upstream/awspca/templates.js';

export interface RemoteServingOptions {
  sans: string[];
  ttlSeconds: number;
  now: () => Date;
  log?: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
  onIssue?: (c: ServingCertificate, chain: UpstreamChain) => void;
  onError?: (e: unknown) => void;
}

/** What the gRPC transports need: the serving chain and key, and the CAs client certificates chain to. */
export interface RemoteServingMaterial {
  certChainPem: string;
  keyPem: string;
  trustedCaPem: string;
}

const RETRY_MS = 30_000;

/**
 * The gRPC serving certificate in RA mode, where no CA key exists in this process: a fresh P-256
 * key and a CSR for the serving names, signed by the upstream like a workload certificate (at most
 * 7 days, PCA's short-lived limit), renewed at half life, retried every 30 s while the upstream is
 * down (the current certificate stays in use meanwhile). Same surface as ServingTls.
 */
export class RemoteServingTls {
  private readonly listeners = new Set<(m: RemoteServingMaterial) => void>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  current: ServingCertificate | undefined;
  material: RemoteServingMaterial | undefined;
  /** The issuing CA and chain above it, as the upstream returned them with the serving certificate. */
  issuerChain: ParsedCertificate[] = [];

  private constructor(
    private readonly upstream: Pick<Upstream, 'signWorkload'>,
    private readonly o: RemoteServingOptions,
  ) {}

  /** Resolves once the first certificate is issued; the server cannot serve TLS without it. */
  static async start(upstream: Pick<Upstream, 'signWorkload'>, o: RemoteServingOptions): Promise<RemoteServingTls> {
    const t = new RemoteServingTls(upstream, o);
    await t.renew();
    return t;
  }

  subscribe(l: (m: RemoteServingMaterial) => void): void {
    this.listeners.add(l);
  }

  async renew(): Promise<void> {
    const kp = generateKeyPair('ec-p256');
    const dnsNames = this.o.sans.filter((s) => isIP(s) === 0);
    const ipAddresses = this.o.sans.filter((s) => isIP(s) !== 0);
    // A subject as well as SANs: CAs' end-entity templates (PCA's among them) may want one.
    const csr = createCsr({ key: kp.privateKey, subject: { commonName: dnsNames[0] ?? ipAddresses[0] }, sans: { dnsNames, ipAddresses } });
    const got = await this.upstream.signWorkload!({ csrPem: csr.pem, ttlSeconds: Math.min(this.o.ttlSeconds, SHORT_LIVED_MAX_SECONDS) });
    const above = got.chain.filter((c) => !c.selfIssued);
    const c: ServingCertificate = {
      certChainPem: certsToPem([got.cert, ...above]),
      keyPem: privateKeyToPem(kp.privateKey),
      notBefore: got.cert.notBefore,
      notAfter: got.cert.notAfter,
      sans: this.o.sans,
    };
    this.current = c;
    this.issuerChain = got.chain;
    this.material = { certChainPem: c.certChainPem, keyPem: c.keyPem, trustedCaPem: certsToPem(got.chain) };
    for (const l of this.listeners) l(this.material);
    this.o.onIssue?.(c, got);
    this.o.log?.info({ sans: c.sans, notAfter: c.notAfter.toISOString() }, 'serving certificate issued by the upstream');
    this.schedule(Math.max(1000, (c.notAfter.getTime() - this.o.now().getTime()) / 2));
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const step = Math.min(ms, 2 ** 31 - 1);
    this.timer = setTimeout(() => {
      if (step < ms) return this.schedule(ms - step);
      this.renew().catch((e: unknown) => {
        this.o.onError?.(e);
        this.o.log?.error({ err: e }, 'serving certificate renewal from the upstream failed; retrying');
        this.schedule(RETRY_MS);
      });
    }, step);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
