import { z } from 'zod';
import { duration } from './types.js';
import { k8sCsrUpstreamSchema } from '../upstream/k8s-csr/config.js';
import type { FieldSpec } from './field-spec.js';
import { K8S_CSR_FIELDS, K8S_CSR_SHAPE } from './upstream-keys.js';

/**
 * The `meshca serve` keys for running in Kubernetes: the Kubernetes CSR upstream (RA mode, its keys
 * from config/upstream-keys.ts), the CSR signer controller, leader election on a Lease, CA state in a Secret, and the
 * Istio Secrets meshca publishes. Spread into the one schema (schema.ts) and field table
 * (fields.ts) like the upstream and store keys: flat keys, each with a flag and an env variable.
 * Every Kubernetes call uses `kubeconfig` (a path or "in-cluster"; unset: the default rules).
 */

const dnsLabel = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'expected a DNS label (lowercase letters, digits, "-")');
const objectName = z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'expected a Kubernetes object name');

export const K8S_SHAPE = {
  ...K8S_CSR_SHAPE,
  signerNames: z.array(k8sCsrUpstreamSchema.shape.signerName).default([]),
  leaderElection: z.boolean().default(false),
  leaseName: objectName.default('meshca-leader'),
  leaseDuration: duration.default(15),
  leaseRenewDeadline: duration.default(10),
  leaseRetryPeriod: duration.default(2),
  k8sNamespace: dnsLabel.optional(),
  podName: z.string().min(1).max(253).optional(),
  stateBackend: z.enum(['dir', 'secret']).default('dir'),
  stateSecret: objectName.default('meshca-state'),
  istioNamespace: dnsLabel.default('istio-system'),
  publishCacerts: z.boolean().default(false),
  publishIstiodTls: z.boolean().default(false),
  istiodSans: z
    .array(z.string().min(1))
    .min(1)
    .default(['istiod.istio-system.svc', 'istiod.istio-system.svc.cluster.local', 'istiod.istio-system', 'istiod']),
  secretOverride: z.boolean().default(false),
};

export const K8S_FIELDS = {
  ...K8S_CSR_FIELDS,
  signerNames: { kind: 'list', help: 'run the CSR signer controller for these signer names, signing with the cluster intermediate' },
  leaderElection: { kind: 'bool', help: 'run controllers only while holding a coordination.k8s.io Lease (several replicas)' },
  leaseName: { kind: 'string', help: 'name of the leader election Lease' },
  leaseDuration: { kind: 'duration', help: 'how long a Lease holds without renewal; a follower takes over after it' },
  leaseRenewDeadline: { kind: 'duration', help: 'a leader that cannot renew for this long stops its controllers (below leaseDuration)' },
  leaseRetryPeriod: { kind: 'duration', help: 'between Lease attempts and renewals' },
  k8sNamespace: {
    kind: 'string',
    help: "meshca's namespace for its Lease and state Secret (default: the kubeconfig context's, or the pod's)",
  },
  podName: { kind: 'string', help: "this replica's identity in the Lease (default: $HOSTNAME, the pod name)" },
  stateBackend: {
    kind: 'string',
    help: 'where the root and cluster bundles live: dir (state directory) or secret (a Secret shared by replicas)',
  },
  stateSecret: { kind: 'string', help: 'name of the state Secret (stateBackend secret)' },
  istioNamespace: { kind: 'string', help: "Istio's namespace for the Secrets meshca publishes" },
  publishCacerts: { kind: 'bool', help: 'publish the plugin-CA Secret cacerts (Istio and cert-manager layouts) for istiod' },
  publishIstiodTls: {
    kind: 'bool',
    help: "publish istiod-tls (istiod's serving certificate) and the istio-ca-root-cert ConfigMap, for proxies using meshca as their CA",
  },
  istiodSans: { kind: 'list', help: "DNS names of istiod's serving certificate (publishIstiodTls)" },
  secretOverride: { kind: 'bool', help: 'replace Secrets meshca did not create (otherwise a hand-made cacerts is left alone)' },
} as const satisfies Record<keyof typeof K8S_SHAPE, FieldSpec>;

interface K8sSettings {
  upstream: string;
  upstreamMode?: string;
  signerNames: string[];
  stateBackend: 'dir' | 'secret';
  publishCacerts: boolean;
  publishIstiodTls: boolean;
  leaderElection: boolean;
  leaseDuration: number;
  leaseRenewDeadline: number;
  leaseRetryPeriod: number;
  workers: number;
  store?: string;
  storeUrl?: string;
}

/** RA mode: every workload certificate is signed upstream and this process holds no CA key. */
export function isRaMode(c: Pick<K8sSettings, 'upstream' | 'upstreamMode'>): boolean {
  return c.upstream === 'k8s-csr' || c.upstreamMode === 'ra';
}

/** Cross-field rules, called from the schema's superRefine. */
export function refineK8s(c: K8sSettings, ctx: z.RefinementCtx): void {
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if (c.upstream === 'k8s-csr') {
    if (c.workers !== 1)
      issue('workers', 'k8s-csr is a registration authority: the Kubernetes signer, not local CPU, bounds its throughput; run one process');
  }
  if (isRaMode(c)) {
    if (c.signerNames.length > 0)
      issue('signerNames', "the CSR signer controller signs with meshca's own intermediate, which RA mode does not have");
    if (c.publishCacerts) issue('publishCacerts', 'RA mode has no intermediate key to give istiod');
    if (c.publishIstiodTls) issue('publishIstiodTls', "RA mode has no intermediate key to sign istiod's certificate with");
  }
  if (c.leaderElection && (c.store === 'postgres' || (c.store === undefined && c.storeUrl))) {
    issue('leaderElection', 'the PostgreSQL store already elects a leader (advisory lock); a Lease would be a second, competing election');
  }
  if (c.leaseRenewDeadline >= c.leaseDuration) {
    issue(
      'leaseRenewDeadline',
      `must be shorter than leaseDuration (${c.leaseDuration}s): a leader must stop before another can take over`,
    );
  }
  if (c.leaseRetryPeriod >= c.leaseRenewDeadline)
    issue('leaseRetryPeriod', `must be shorter than leaseRenewDeadline (${c.leaseRenewDeadline}s)`);
  // With AWS PCA the Secret holds the intermediates the Lease holder obtains (ca/material/lease-replicated.ts).
  const leased = c.upstream === 'awspca' && c.upstreamMode !== 'ra' && c.leaderElection;
  if (c.stateBackend === 'secret' && c.upstream !== 'local' && !leased)
    issue(
      'stateBackend',
      `a state Secret keeps meshca's own root, or with leaderElection the intermediates from upstream awspca (intermediate mode); not upstream ${c.upstream}${c.upstreamMode === 'ra' ? ' in RA mode' : ''}${c.leaderElection ? '' : ' without leaderElection'}`,
    );
}
