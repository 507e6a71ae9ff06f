import { readFileSync } from 'node:fs';
import { certLabel, parseCertificates, type ParsedCertificate } from '../../pki/certificate.js';
import { verifyChain } from '../../pki/chain.js';
import { parseCsr } from '../../pki/csr.js';
import { MeshcaError, errorMessage } from '../../pki/errors.js';
import { KubeClient } from '../../k8s/client.js';
import { submitCsr } from '../../k8s/csr-request.js';
import { WORKLOAD_USAGES } from '../../k8s/usages.js';
import type { SignIntermediateRequest, SignWorkloadRequest, Upstream, UpstreamChain, UpstreamContext } from '../contract.js';
import type { K8sCsrUpstreamConfig } from './config.js';

const CA_USAGES = ['digital signature', 'cert sign', 'crl sign'];

/**
 * The Kubernetes CSR API as an upstream: meshca is the registration authority (it authenticates
 * and authorizes the workload), a signer controller in the cluster signs. The chain that comes back
 * is verified against the configured external root before anyone gets it.
 */
export class K8sCsrUpstream implements Upstream {
  readonly type = 'k8s-csr';
  private client: Promise<KubeClient> | undefined;
  private readonly now: () => Date;

  constructor(
    private readonly config: K8sCsrUpstreamConfig,
    private readonly ctx: UpstreamContext = {},
    client?: KubeClient,
  ) {
    this.now = ctx.now ?? (() => new Date());
    if (client) this.client = Promise.resolve(client);
  }

  get source(): string {
    return this.config.signerName;
  }

  private kube(): Promise<KubeClient> {
    this.client ??= KubeClient.load({ kubeconfig: this.config.kubeconfig });
    return this.client;
  }

  async check(): Promise<void> {
    await this.kube();
    const roots = await this.roots();
    const t = this.now().getTime();
    const live = roots.filter((r) => r.notAfter.getTime() > t);
    if (live.length === 0)
      throw new MeshcaError('failed_precondition', 'upstream_expired', `every root in ${this.config.externalCaRoot} has expired`);
  }

  /** Read at every call, so that a mounted root file that changes (a root rotation) takes effect. */
  async roots(): Promise<ParsedCertificate[]> {
    let text: string;
    try {
      text = readFileSync(this.config.externalCaRoot, 'utf8');
    } catch (e) {
      throw new MeshcaError(
        'not_found',
        'upstream_file',
        `externalCaRoot ${this.config.externalCaRoot} cannot be read: ${errorMessage(e)}`,
        { cause: e },
      );
    }
    const roots = parseCertificates(text, this.config.externalCaRoot);
    if (roots.length === 0)
      throw new MeshcaError('invalid_argument', 'bad_root', `externalCaRoot ${this.config.externalCaRoot} holds no certificate`);
    return roots;
  }

  signWorkload(req: SignWorkloadRequest): Promise<UpstreamChain> {
    const csr = parseCsr(req.csrPem, 'workload CSR');
    return this.sign(
      req.csrPem,
      WORKLOAD_USAGES,
      req.ttlSeconds,
      csr.sans.uris[0] ?? csr.sans.dnsNames[0] ?? csr.subject,
      false,
      req.signal,
    );
  }

  /** Works with a signer that grants CA usages; meshca's own signer controller refuses them. */
  signIntermediate(req: SignIntermediateRequest): Promise<UpstreamChain> {
    return this.sign(req.csrPem, CA_USAGES, req.ttlSeconds, parseCsr(req.csrPem, 'intermediate CSR').subject, true, req.signal);
  }

  private async sign(
    csrPem: string,
    usages: string[],
    ttlSeconds: number,
    note: string,
    isCA: boolean,
    signal?: AbortSignal,
  ): Promise<UpstreamChain> {
    const client = await this.kube();
    const { name, certificatePem } = await submitCsr(client, {
      csrPem,
      signerName: this.config.signerName,
      usages,
      ttlSeconds,
      approve: this.config.approve,
      approvalNote: note,
      timeoutMs: this.config.timeoutSeconds * 1000,
      signal,
      log: this.ctx.warn ? { warn: (_o, m) => this.ctx.warn!(m), debug: () => {} } : undefined,
    });
    return this.chainOf(name, certificatePem, csrPem, isCA);
  }

  /** status.certificate is leaf then intermediates; the root comes from our own file, never from the signer. */
  private async chainOf(name: string, pem: string, csrPem: string, isCA: boolean): Promise<UpstreamChain> {
    const bad = (why: string) =>
      new MeshcaError('unavailable', 'upstream_bad_certificate', `signer ${this.config.signerName} answered CSR ${name} with ${why}`);
    let certs: ParsedCertificate[];
    try {
      certs = parseCertificates(pem, `status.certificate of CSR ${name}`);
    } catch (e) {
      throw bad(`an unreadable certificate: ${errorMessage(e)}`);
    }
    if (certs.length === 0) throw bad('no certificate');
    const [leaf, ...rest] = certs;
    if (!leaf.publicKey.equals(parseCsr(csrPem).publicKey)) throw bad(`a certificate (${certLabel(leaf)}) for another key`);
    if (leaf.isCA !== isCA)
      throw bad(
        isCA ? 'an end-entity certificate where a CA was asked for' : 'a CA certificate where a workload certificate was asked for',
      );
    const roots = await this.roots();
    const intermediates = rest.filter((c) => !c.selfIssued);
    const result = verifyChain([leaf, ...intermediates], { now: this.now(), roots, leafIsEndEntity: !isCA });
    if (!result.ok || !result.anchor)
      throw bad(`a chain that does not verify to ${this.config.externalCaRoot}: ${result.problems.join('; ')}`);
    return { cert: leaf, chain: [...intermediates, result.anchor] };
  }
}

export function createK8sCsrUpstream(config: K8sCsrUpstreamConfig, ctx: UpstreamContext = {}): Upstream {
  return new K8sCsrUpstream(config, ctx);
}
