import { z } from 'zod';
import type { FieldSpec } from './field-spec.js';
import { storeKindOf } from './store.js';

/**
 * The `meshca serve` key that signs workloads with the key pair of a cert-manager style Secret
 * (`tls.crt`, `tls.key`, `ca.crt`), such as the one a `Certificate` named `istio-ca` gets: what
 * istio-csr does in front of cert-manager. Spread into the one schema (schema.ts) and field table
 * (fields.ts) like the other groups.
 */

const SECRET_REF = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\/[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export const ISSUER_SECRET_SHAPE = {
  issuerSecret: z.string().regex(SECRET_REF, 'expected NAMESPACE/NAME of a Secret, such as istio-system/istio-ca').optional(),
  issuerSecretSource: z.enum(['state-dir', 'kubernetes']).default('state-dir'),
};

export const ISSUER_SECRET_FIELDS = {
  issuerSecret: {
    kind: 'string',
    help: 'sign workloads with the CA key pair in this Secret (NAMESPACE/NAME: tls.crt, tls.key, ca.crt, as a cert-manager Certificate writes it), reloaded when it changes',
  },
  issuerSecretSource: {
    kind: 'string',
    help: "where the issuer Secret is read: state-dir (meshca's controllers or `meshca apply` write it there) or kubernetes (the API server of --kubeconfig, where cert-manager writes it)",
  },
} as const satisfies Record<keyof typeof ISSUER_SECRET_SHAPE, FieldSpec>;

export interface IssuerSecretRef {
  namespace: string;
  name: string;
}

/** `istio-system/istio-ca` -> { namespace, name }; the schema has already checked the shape. */
export function issuerSecretRef(value: string): IssuerSecretRef {
  const [namespace, name] = value.split('/');
  return { namespace, name };
}

interface IssuerSecretSettings {
  issuerSecret?: string;
  issuerSecretSource: 'state-dir' | 'kubernetes';
  upstream: string;
  store?: 'sqlite' | 'postgres';
  storeUrl?: string;
  stateBackend: string;
}

/** Cross-field rules, called from the schema's superRefine. */
export function refineIssuerSecret(c: IssuerSecretSettings, ctx: z.RefinementCtx): void {
  if (c.issuerSecret === undefined) {
    if (c.issuerSecretSource !== 'state-dir')
      ctx.addIssue({ code: 'custom', path: ['issuerSecretSource'], message: 'only used with issuerSecret' });
    return;
  }
  const issue = (message: string) => ctx.addIssue({ code: 'custom', path: ['issuerSecret'], message });
  if (c.upstream !== 'local')
    issue(`the Secret's key pair is the issuing CA; upstream ${c.upstream} would be a second one (leave upstream unset)`);
  if (storeKindOf(c) === 'postgres')
    issue('replicas on PostgreSQL share the CA the leader keeps in the database; an issuer Secret is read from one state directory');
  if (c.stateBackend === 'secret') issue("the state Secret holds meshca's own root and intermediates, which an issuer Secret replaces");
}
