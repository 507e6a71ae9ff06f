import { certsToPem, type ParsedCertificate } from '../pki/certificate.js';
import type { Signer } from '../pki/issue.js';
import { privateKeyToPem } from '../pki/keys.js';
import { issueServingCertificate } from '../ca/serving.js';
import { OWNER_ANNOTATION, MANAGED_BY_LABEL, type SecretContent, type SecretSink } from '../resources/secrets.js';
import { apiStatus, kubeError, type KubeClient } from './client.js';

export const PUBLISHER_OWNER = 'meshca/istio-publisher';

export interface CaMaterial {
  signer: Signer;
  roots: ParsedCertificate[];
}

export interface IstioPublisherOptions {
  sink: SecretSink;
  client: KubeClient;
  /** Istio's namespace (istio-system). */
  namespace: string;
  material: () => CaMaterial;
  /** Plugin-CA mode: istiod signs workloads with meshca's intermediate from the `cacerts` Secret. */
  cacerts: boolean;
  /**
   * External-CA mode (proxies call meshca): istiod's own serving certificate in `istiod-tls` and the
   * root in the `istio-ca-root-cert` ConfigMap, which the stock istiod chart mounts (the istio-csr
   * integration points, /var/run/secrets/istiod/tls and /var/run/secrets/istiod/ca).
   */
  istiod?: { sans: string[]; ttlSeconds: number };
  now?: () => Date;
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

const annotations = { [OWNER_ANNOTATION]: PUBLISHER_OWNER };
const labels = { [MANAGED_BY_LABEL]: 'meshca' };

/** The plugin-CA Secret in both layouts istiod reads: Istio's four files and cert-manager's tls.crt/tls.key/ca.crt. */
export function cacertsContent(m: CaMaterial): SecretContent {
  const chain = [m.signer.cert, ...m.signer.chain];
  const key = Buffer.from(privateKeyToPem(m.signer.key));
  const roots = Buffer.from(certsToPem(m.roots));
  return {
    type: 'kubernetes.io/tls',
    labels,
    annotations,
    data: {
      'ca-cert.pem': Buffer.from(m.signer.cert.pem),
      'ca-key.pem': key,
      'cert-chain.pem': Buffer.from(certsToPem(chain)),
      'root-cert.pem': roots,
      'tls.crt': Buffer.from(certsToPem(chain.filter((c) => !c.selfIssued))),
      'tls.key': key,
      'ca.crt': roots,
    },
  };
}

/**
 * Keeps Istio's Secrets in step with meshca's CA while this replica leads: `cacerts` (plugin CA)
 * and/or `istiod-tls` plus the `istio-ca-root-cert` ConfigMap (external CA), renewing istiod's
 * certificate at half life and republishing when the CA material changes.
 */
export class IstioPublisher {
  private istiodNotAfter = 0;
  private istiodIssuedBy = '';
  private readonly now: () => Date;

  constructor(private readonly o: IstioPublisherOptions) {
    this.now = o.now ?? (() => new Date());
  }

  /** One pass; returns when the next pass is due (ms from now). */
  async publish(): Promise<number> {
    const m = this.o.material();
    const ns = this.o.namespace;
    const by = { owner: PUBLISHER_OWNER };
    let next = 60_000;
    if (this.o.cacerts && (await this.o.sink.put({ namespace: ns, name: 'cacerts' }, cacertsContent(m), by))) {
      this.o.log?.info({ secret: `${ns}/cacerts`, ca: m.signer.cert.subject }, 'published the plugin CA secret');
    }
    if (this.o.istiod) {
      const now = this.now().getTime();
      const issuer = m.signer.cert.fingerprint256;
      const half = this.istiodNotAfter - (this.istiodNotAfter - now) / 2;
      if (this.istiodIssuedBy !== issuer || now >= half || this.istiodNotAfter === 0) {
        const c = issueServingCertificate(m.signer, this.o.istiod.sans, this.o.istiod.ttlSeconds, this.now());
        await this.o.sink.put(
          { namespace: ns, name: 'istiod-tls' },
          {
            type: 'kubernetes.io/tls',
            labels,
            annotations,
            data: { 'tls.crt': Buffer.from(c.certChainPem), 'tls.key': Buffer.from(c.keyPem), 'ca.crt': Buffer.from(certsToPem(m.roots)) },
          },
          by,
        );
        this.istiodNotAfter = c.notAfter.getTime();
        this.istiodIssuedBy = issuer;
        this.o.log?.info({ secret: `${ns}/istiod-tls`, notAfter: c.notAfter.toISOString() }, 'published istiod serving certificate');
      }
      await this.publishRoot(m.roots);
      next = Math.min(next, Math.max(1000, (this.istiodNotAfter - this.now().getTime()) / 2));
    }
    return next;
  }

  private async publishRoot(roots: ParsedCertificate[]): Promise<void> {
    const core = this.o.client.core;
    const ns = this.o.namespace;
    const name = 'istio-ca-root-cert';
    const data = { 'root-cert.pem': certsToPem(roots) };
    try {
      let current;
      try {
        current = await core.readNamespacedConfigMap({ name, namespace: ns });
      } catch (e) {
        if (apiStatus(e) !== 404) throw e;
      }
      const body = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, namespace: ns, labels, annotations, resourceVersion: current?.metadata?.resourceVersion },
        data,
      };
      if (!current) await core.createNamespacedConfigMap({ namespace: ns, body });
      else if (current.data?.['root-cert.pem'] !== data['root-cert.pem'])
        await core.replaceNamespacedConfigMap({ name, namespace: ns, body });
    } catch (e) {
      throw kubeError(`publishing ConfigMap ${ns}/${name}`, e);
    }
  }

  /** Publishes until the signal aborts (leadership lost); failures are retried a minute later. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let wait = 60_000;
      try {
        wait = await this.publish();
      } catch (e) {
        this.o.log?.warn({ err: (e as Error).message }, 'publishing Istio secrets failed; retrying in a minute');
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(wait, 2 ** 31 - 1));
        function done() {
          clearTimeout(t);
          signal.removeEventListener('abort', done);
          resolve();
        }
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }
}
