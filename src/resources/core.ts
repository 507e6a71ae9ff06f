import { z } from 'zod';

/** Core `v1 Secret`, accepted by `meshca apply` so that issuers' CA secrets can be provided declaratively. */
export const SecretSchema = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Secret'),
  metadata: z.unknown(),
  type: z.string().optional(),
  data: z.record(z.string(), z.string().regex(/^[A-Za-z0-9+/\s]*={0,2}\s*$/, 'must be base64')).optional(),
  stringData: z.record(z.string(), z.string()).optional(),
  immutable: z.boolean().optional(),
});

/** Secret data keys, as Kubernetes allows them. */
export const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
