import { z } from 'zod';
import { namespaceName, objectName, type Condition, type Resource } from './meta.js';

export const GLOO_ADMIN_GROUP = 'admin.gloo.solo.io';

/** Gloo's documented defaults for intermediates: one year, RSA 4096 (the field says bytes, it means bits), O=gloo-mesh. */
export const RTP_DEFAULTS = {
  ttlDays: 365,
  rsaKeySizeBytes: 4096,
  orgName: 'gloo-mesh',
  /** Renew when a tenth of the lifetime is left, like Gloo's own examples. */
  secretRotationGracePeriodRatio: 0.1,
} as const;

/** Gloo's CommonCertOptions, shared by the generated root and the per-cluster intermediates. */
export const CertOptionsSchema = z.strictObject({
  ttlDays: z.number().int().min(1, 'must be at least 1 day').max(36_500).optional(),
  rsaKeySizeBytes: z
    .number()
    .int()
    .refine((n) => [2048, 3072, 4096].includes(n), { message: 'must be 2048, 3072 or 4096 (bits, despite the name)' })
    .optional(),
  orgName: z.string().min(1).optional(),
  secretRotationGracePeriodRatio: z
    .number()
    .refine((r) => r > 0 && r < 1, { message: 'must be between 0 and 1 exclusive (the fraction of the lifetime left at renewal)' })
    .optional(),
});
export type CertOptions = z.infer<typeof CertOptionsSchema>;

const SecretRefSchema = z.strictObject({ name: objectName, namespace: namespaceName.optional() });

export const RootTrustPolicySpecSchema = z.strictObject({
  config: z
    .strictObject({
      mgmtServerCa: z
        .strictObject({
          generated: CertOptionsSchema.optional(),
          secretRef: SecretRefSchema.optional(),
        })
        .superRefine((m, ctx) => {
          if ((m.generated === undefined) === (m.secretRef === undefined)) {
            ctx.addIssue({ code: 'custom', path: [], message: 'set exactly one of generated or secretRef' });
          }
        })
        .optional(),
      intermediateCertOptions: CertOptionsSchema.optional(),
      /** Gloo restarts Istio pods after a change; meshca leaves that to istiod's reload and says so in status. */
      autoRestartPods: z.boolean().optional(),
    })
    .optional(),
});
export type RootTrustPolicySpec = z.infer<typeof RootTrustPolicySpecSchema>;

export interface ClusterCaStatus {
  state: 'ISSUED' | 'FAILED' | 'PENDING';
  message?: string;
  serialNumber?: string;
  notBefore?: string;
  notAfter?: string;
  renewalTime?: string;
  /** SHA-256 fingerprints of the roots written into this cluster's root-cert.pem. */
  trustedRoots?: string[];
  issuerFingerprint?: string;
  lastFailureTime?: string;
  failedAttempts?: number;
}

export interface RootTrustPolicyStatus {
  state?: 'ACCEPTED' | 'FAILED';
  conditions?: Condition[];
  observedGeneration?: number;
  /** SHA-256 fingerprint of the root that signs the intermediates. */
  rootFingerprint?: string;
  clusters?: Record<string, ClusterCaStatus>;
}
export type RootTrustPolicy = Resource<RootTrustPolicySpec, RootTrustPolicyStatus>;
