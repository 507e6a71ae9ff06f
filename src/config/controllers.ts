import { z } from 'zod';
import type { FieldSpec } from './field-spec.js';

/**
 * The `meshca serve` key for the declarative controllers: Certificates, issuers,
 * RootTrustPolicies and RootRotations reconciled by the server itself (on the leader), so that
 * renewals and rotation phases happen on time without a cron of `meshca reconcile`. Spread into
 * the one schema (schema.ts) and field table (fields.ts) like the other groups. `manifests` is the
 * directory those resources come from when they must be the same in every replica.
 */
export const CONTROLLERS_SHAPE = {
  controllers: z.boolean().default(true),
  manifests: z.string().min(1).optional(),
};

export const CONTROLLERS_FIELDS = {
  controllers: {
    kind: 'bool',
    help: 'run the declarative controllers (renewals, RootTrustPolicy, RootRotation) in the leader; false leaves them to `meshca reconcile`',
  },
  manifests: {
    kind: 'string',
    help: 'directory of manifests (RootTrustPolicy, Cluster, Secret...) every replica applies at start and whenever they change; objects removed from it are deleted',
  },
} as const satisfies Record<keyof typeof CONTROLLERS_SHAPE, FieldSpec>;
