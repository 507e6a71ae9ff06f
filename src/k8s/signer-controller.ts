import { MeshcaError, isMeshcaError } from '../pki/errors.js';
import type { Signer } from '../pki/issue.js';
import { kubeError, apiStatus, type KubeClient } from './client.js';
import { CSR_PATH, condition, csrPhase, decodeBytes, encodeBytes, failedReason, type KubeCsr } from './csr.js';
import { WorkQueue } from './queue.js';
import { runReflector } from './reflector.js';
import { signKubeCsr, type CsrSigningPolicy } from './sign.js';

export interface ControllerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface SignerOutcome {
  name: string;
  signerName: string;
  outcome: 'signed' | 'failed';
  reason?: string;
  serial?: string;
}

export interface SignerControllerOptions {
  client: KubeClient;
  /** spec.signerName values this controller signs for; CSRs for any other signer are never touched. */
  signerNames: string[];
  /** The signing CA, read at each signature so that a renewed intermediate takes effect at once. */
  signer: () => Signer;
  policy: CsrSigningPolicy;
  now?: () => Date;
  log?: ControllerLogger;
  concurrency?: number;
  /** Called after each status write (signed or Failed); for metrics and tests. */
  onOutcome?: (o: SignerOutcome) => void;
}

/**
 * The custom signer of the Kubernetes CSR flow: watches CertificateSigningRequests and signs the
 * approved ones addressed to its signer names (writing status.certificate through /status), or marks
 * a request it cannot sign Failed with a reason. Each CSR is handled once: the work queue never runs
 * a name twice at once, writes carry the resourceVersion read (a stale view gets 409 and a retry
 * with the newer object), and CSRs that reached a final phase are remembered by uid.
 */
export class CsrSignerController {
  private readonly cache = new Map<string, KubeCsr>();
  private readonly finished = new Set<string>();
  private queue: WorkQueue | undefined;
  private signal: AbortSignal | undefined;
  private readonly now: () => Date;

  constructor(private readonly o: SignerControllerOptions) {
    if (o.signerNames.length === 0)
      throw new MeshcaError('invalid_argument', 'no_signer_names', 'the CSR signer controller needs at least one signer name');
    this.now = o.now ?? (() => new Date());
  }

  /** Runs until the signal aborts; then it stops at once: no status write starts after the abort. */
  async run(signal: AbortSignal): Promise<void> {
    this.signal = signal;
    this.cache.clear();
    const queue = new WorkQueue((name) => this.process(name), {
      concurrency: this.o.concurrency ?? 4,
      onError: (name, e, retryMs) => this.o.log?.warn({ csr: name, err: (e as Error).message, retryMs }, 'CSR signing failed; will retry'),
    });
    this.queue = queue;
    signal.addEventListener('abort', () => queue.stop(), { once: true });
    this.o.log?.info({ signerNames: this.o.signerNames }, 'CSR signer controller started');
    await runReflector<KubeCsr>(
      this.o.client,
      {
        path: CSR_PATH,
        list: async () => {
          const l = await this.o.client.certificates.listCertificateSigningRequest();
          return { items: l.items, resourceVersion: l.metadata?.resourceVersion ?? '' };
        },
      },
      {
        sync: (items) => {
          this.cache.clear();
          for (const c of items) this.observe(c);
        },
        event: (type, c) => {
          const name = c.metadata?.name;
          if (!name) return;
          if (type === 'DELETED') {
            this.cache.delete(name);
            if (c.metadata?.uid) this.finished.delete(c.metadata.uid);
            return;
          }
          this.observe(c);
        },
      },
      { signal, log: this.o.log },
    );
    queue.stop();
    this.o.log?.info({}, 'CSR signer controller stopped');
  }

  /** Resolves when no CSR is queued or being handled (for tests). */
  idle(): Promise<void> {
    return this.queue?.idle() ?? Promise.resolve();
  }

  private observe(c: KubeCsr): void {
    const name = c.metadata?.name;
    if (!name || !this.o.signerNames.includes(c.spec?.signerName)) return;
    this.cache.set(name, c);
    if (csrPhase(c) === 'approved') this.queue?.add(name);
  }

  private async process(name: string): Promise<void> {
    const csr = this.cache.get(name);
    if (!csr || this.signal?.aborted) return;
    const uid = csr.metadata?.uid ?? name;
    if (this.finished.has(uid)) return;
    const phase = csrPhase(csr);
    if (phase !== 'approved') {
      if (phase !== 'pending') this.finished.add(uid);
      return;
    }
    let status: KubeCsr['status'];
    let outcome: SignerOutcome;
    try {
      const signed = signKubeCsr(
        this.o.signer(),
        {
          csrPem: decodeBytes(csr.spec.request),
          usages: csr.spec.usages ?? [],
          expirationSeconds: csr.spec.expirationSeconds,
          now: this.now(),
        },
        this.o.policy,
      );
      status = { ...csr.status, certificate: encodeBytes(signed.chainPem) };
      outcome = { name, signerName: csr.spec.signerName, outcome: 'signed', serial: signed.cert.serialHex };
    } catch (e) {
      // A request we will never be able to sign is Failed with the reason; anything else (our
      // CA expired, say) is our problem and is retried.
      if (!isMeshcaError(e) || (e.code !== 'invalid_argument' && e.code !== 'permission_denied')) throw e;
      const reason = failedReason(e.reason);
      status = { ...csr.status, conditions: [...(csr.status?.conditions ?? []), condition('Failed', reason, e.message, this.now())] };
      outcome = { name, signerName: csr.spec.signerName, outcome: 'failed', reason };
    }
    if (this.signal?.aborted) return;
    try {
      await this.o.client.certificates.replaceCertificateSigningRequestStatus({ name, body: { ...csr, status } });
    } catch (e) {
      if (apiStatus(e) === 404) return;
      throw kubeError(`writing the status of CSR ${name}`, e);
    }
    this.finished.add(uid);
    if (outcome.outcome === 'signed') this.o.log?.info({ csr: name, signerName: outcome.signerName, serial: outcome.serial }, 'signed CSR');
    else this.o.log?.warn({ csr: name, signerName: outcome.signerName, reason: outcome.reason }, 'CSR marked Failed');
    this.o.onOutcome?.(outcome);
  }
}
