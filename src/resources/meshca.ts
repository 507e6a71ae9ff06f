import { z } from 'zod';
import { goDuration, IssuerRefSchema } from './certmanager.js';
import { DNS_LABEL, namespaceName, objectName, type Condition, type Resource } from './meta.js';

/** meshca's own kinds: the cluster registry, the approval policy and root rotations. */
export const MESHCA_GROUP = 'meshca.io';

/**
 * How meshca reaches a cluster's API server: a kubeconfig file, or a key of a Secret in meshca's
 * state. Only the reference is stored in the Cluster; the credentials stay where they are.
 */
export const ClusterKubeconfigSchema = z
  .strictObject({
    file: z.string().min(1).optional(),
    secretRef: z.strictObject({ name: objectName, namespace: namespaceName.optional(), key: z.string().min(1).optional() }).optional(),
    context: z.string().min(1).optional(),
  })
  .superRefine((k, ctx) => {
    if ((k.file === undefined) === (k.secretRef === undefined))
      ctx.addIssue({ code: 'custom', path: [], message: 'set exactly one of file or secretRef' });
  });
export type ClusterKubeconfig = z.infer<typeof ClusterKubeconfigSchema>;

/** A registered cluster (`meshca cluster add NAME`); RootTrustPolicies issue one intermediate each. */
export const ClusterSpecSchema = z.strictObject({
  description: z.string().optional(),
  /** With it, the leader writes the cluster's istio-system/cacerts Secret to its API server. */
  kubeconfig: ClusterKubeconfigSchema.optional(),
  /** Replace an istio-system/cacerts that meshca did not create (off: such a Secret is left alone). */
  adoptExisting: z.boolean().optional(),
});
export type ClusterSpec = z.infer<typeof ClusterSpecSchema>;

/** The last delivery of the cluster's bundle to its API server. */
export interface ClusterDeliveryStatus {
  /** The API server written to (from the kubeconfig; never its credentials). */
  server?: string;
  /** SHA-256 of the Secret data last written (or found already in place). */
  digest?: string;
  serialNumber?: string;
  /** Expiry of the delivered intermediate. */
  notAfter?: string;
  lastWriteTime?: string;
  /** The last attempt's error; cleared by the next successful delivery. */
  lastError?: string;
  lastErrorTime?: string;
  failedAttempts?: number;
}
export type Cluster = Resource<ClusterSpec, { conditions?: Condition[]; delivery?: ClusterDeliveryStatus }>;
export const clusterNameRule = DNS_LABEL;

const glob = z.string().min(1);

/** One deny rule: it matches when every field it sets matches (globs with "*"). */
export const DenyRuleSchema = z.strictObject({
  namespaces: z.array(namespaceName).optional(),
  issuerRefs: z.array(IssuerRefSchema).optional(),
  commonNames: z.array(glob).optional(),
  dnsNames: z.array(glob).optional(),
  uris: z.array(glob).optional(),
  isCA: z.boolean().optional(),
  message: z.string().optional(),
});
export type DenyRule = z.infer<typeof DenyRuleSchema>;

/**
 * The CertificateRequest approval policy. Without one every request is approved (cert-manager's
 * built-in approver); with one, any request matching a deny rule is Denied with its message.
 */
export const ApprovalPolicySpecSchema = z.strictObject({
  deny: z.array(DenyRuleSchema).optional(),
});
export type ApprovalPolicySpec = z.infer<typeof ApprovalPolicySpecSchema>;
export type ApprovalPolicy = Resource<ApprovalPolicySpec, { conditions?: Condition[] }>;

/**
 * Phases of a root rotation, in order; each names the milestone reached. Each is recorded before
 * the work that follows it starts, and that work is idempotent, so a crash resumes where it stopped:
 *  - NewRootCreated: the new root exists (stored); every cluster's root-cert.pem is widened to old + new.
 *  - TrustBundleExpanded: every cluster carries both roots. After the workload window (so every
 *    workload has learnt the new root) intermediates are re-issued under the new root.
 *  - IntermediatesReissued: every cluster's intermediate chains to the new root; workloads renew onto it.
 *  - WorkloadsRenewed: the workload window has passed since; the old root is withdrawn everywhere.
 *  - OldRootWithdrawn: no cluster trusts the old root any more; the new root becomes the policy's root.
 *  - Complete.
 */
export const ROTATION_PHASES = [
  'Pending',
  'NewRootCreated',
  'TrustBundleExpanded',
  'IntermediatesReissued',
  'WorkloadsRenewed',
  'OldRootWithdrawn',
  'Complete',
] as const;
export type RotationPhase = (typeof ROTATION_PHASES)[number];

export const RootRotationSpecSchema = z.strictObject({
  /** Namespace defaults to gloo-mesh, where Gloo keeps its RootTrustPolicy. */
  rootTrustPolicyRef: z.strictObject({ name: objectName, namespace: namespaceName.optional() }),
  newRoot: z
    .strictObject({
      generated: z
        .strictObject({
          ttlDays: z.number().int().min(1).max(36_500).optional(),
          rsaKeySizeBytes: z
            .number()
            .int()
            .refine((n) => [2048, 3072, 4096].includes(n), { message: 'must be 2048, 3072 or 4096' })
            .optional(),
          orgName: z.string().min(1).optional(),
        })
        .optional(),
      secretRef: z.strictObject({ name: objectName, namespace: namespaceName.optional() }).optional(),
    })
    .superRefine((m, ctx) => {
      if (m.generated !== undefined && m.secretRef !== undefined)
        ctx.addIssue({ code: 'custom', path: [], message: 'set at most one of generated or secretRef' });
    })
    .optional(),
  /**
   * How long every workload needs to renew its certificate, and with it its copy of the trust
   * bundle: the workload certificate TTL (Istio's default 24h). Waited twice: after the trust
   * bundles widen (before any peer presents a chain to the new root) and after the intermediates
   * change (before the old root is withdrawn).
   */
  workloadRenewalWindow: goDuration.optional(),
  /** Stop after this phase (for staged rollouts); resume by raising or removing it. */
  pauseAfter: z.enum(['NewRootCreated', 'TrustBundleExpanded', 'IntermediatesReissued', 'WorkloadsRenewed']).optional(),
});
export type RootRotationSpec = z.infer<typeof RootRotationSpecSchema>;

export interface RotationPhaseRecord {
  phase: RotationPhase;
  time: string;
  message?: string;
}

export interface RootRotationStatus {
  phase?: RotationPhase;
  conditions?: Condition[];
  oldRootFingerprint?: string;
  newRootFingerprint?: string;
  /** When every cluster carried both roots: the first workload window starts here. */
  trustExpandedAt?: string;
  /** When every intermediate chained to the new root: the second workload window starts here. */
  intermediatesReissuedAt?: string;
  history?: RotationPhaseRecord[];
  message?: string;
}
export type RootRotation = Resource<RootRotationSpec, RootRotationStatus>;
