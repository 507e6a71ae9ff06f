import { z } from 'zod';
import { goDuration, IssuerRefSchema } from './certmanager.js';
import { DNS_LABEL, namespaceName, objectName, type Condition, type Resource } from './meta.js';

/** meshca's own kinds: the cluster registry, the approval policy and root rotations. */
export const MESHCA_GROUP = 'meshca.io';

/** A registered cluster (`meshca cluster add NAME`); RootTrustPolicies issue one intermediate each. */
export const ClusterSpecSchema = z.strictObject({
  description: z.string().optional(),
});
export type ClusterSpec = z.infer<typeof ClusterSpecSchema>;
export type Cluster = Resource<ClusterSpec, { conditions?: Condition[] }>;
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

/** Phases of a root rotation, in order. Each is recorded before the next starts, so a crash resumes where it stopped. */
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
  rootTrustPolicyRef: z.strictObject({ name: objectName, namespace: namespaceName.optional() }),
  newRoot: z
    .strictObject({
      generated: z
        .strictObject({
          ttlDays: z.number().int().min(1).max(36_500).optional(),
          rsaKeySizeBytes: z.number().int().refine((n) => [2048, 3072, 4096].includes(n), { message: 'must be 2048, 3072 or 4096' }).optional(),
          orgName: z.string().min(1).optional(),
        })
        .optional(),
      secretRef: z.strictObject({ name: objectName, namespace: namespaceName.optional() }).optional(),
    })
    .superRefine((m, ctx) => {
      if (m.generated !== undefined && m.secretRef !== undefined) ctx.addIssue({ code: 'custom', path: [], message: 'set at most one of generated or secretRef' });
    })
    .optional(),
  /**
   * How long every workload needs to pick up a certificate chained to the new root after the
   * intermediates change: the workload certificate TTL (Istio default 24h). The old root is
   * withdrawn only after this much time has passed.
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
  /** When the intermediates were re-issued under the new root: the workload window starts here. */
  intermediatesReissuedAt?: string;
  history?: RotationPhaseRecord[];
  message?: string;
}
export type RootRotation = Resource<RootRotationSpec, RootRotationStatus>;
