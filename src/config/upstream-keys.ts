import { z } from 'zod';
import { awsPcaUpstreamSchema, awsRegion } from '../upstream/awspca/config.js';
import { filesUpstreamSchema } from '../upstream/files/config.js';
import { k8sCsrUpstreamSchema } from '../upstream/k8s-csr/config.js';
import type { FieldKind, FieldSpec } from './field-spec.js';
import { storeKindOf } from './store.js';
import { duration, hostPort } from './types.js';

/**
 * The `meshca serve` keys for an upstream CA (who signs the cluster intermediate, or in RA mode
 * every workload certificate) and for the PCA-compatible API served next to HTTP. They stay flat
 * keys with a flag and an env variable each, spread into the one schema (schema.ts) and field table
 * (fields.ts); the keys that fill an upstream's config block take their checks from that upstream's
 * own schema (src/upstream/<type>/config.ts) through the rows below, never restating them.
 */

const DAY = 86_400;

export const UPSTREAM_TYPES = ['local', 'files', 'awspca', 'k8s-csr'] as const;

type BlockSchema = z.ZodObject<z.ZodRawShape & { type: z.ZodLiteral<string> }, z.core.$strict>;

/** A block field's schema as a flat key: optional (the "required when" rule comes from the row), durations parsed. */
type FlatSchema<S extends z.core.$ZodType, K extends FieldKind> = K extends 'duration'
  ? z.ZodPipe<z.ZodOptional<typeof duration>, S>
  : S extends z.ZodOptional | z.ZodDefault
    ? S
    : z.ZodOptional<S>;

interface Row<S extends z.core.$ZodType, K extends FieldKind> extends FieldSpec {
  kind: K;
  /** The upstream whose block this key fills, and the field it fills there. */
  upstream: string;
  field: string;
  /** The field has neither a default nor optional(): the key must be set for that upstream. */
  required: boolean;
  schema: FlatSchema<S, K>;
}

/** One flat key filling `field` of `block`; the value is checked by the block's own field schema. */
function row<O extends BlockSchema, F extends keyof O['shape'] & string, K extends FieldKind>(
  block: O,
  field: F,
  kind: K,
  help: string,
): Row<O['shape'][F], K> {
  const own = block.shape[field] as z.ZodType;
  const required = !own.safeParse(undefined).success;
  const schema =
    kind === 'duration' ? duration.optional().pipe(own as z.ZodType<unknown, number | undefined>) : required ? own.optional() : own;
  return { upstream: block.shape.type.value, field, required, kind, help, schema: schema as FlatSchema<O['shape'][F], K> };
}

type Rows = Record<string, Row<z.core.$ZodType, FieldKind>>;

function shapeOf<R extends Rows>(rows: R): { [P in keyof R]: R[P]['schema'] } {
  return Object.fromEntries(Object.entries(rows).map(([k, r]) => [k, r.schema])) as { [P in keyof R]: R[P]['schema'] };
}

function fieldsOf<R extends Rows>(rows: R): { [P in keyof R]: FieldSpec } {
  return Object.fromEntries(Object.entries(rows).map(([k, r]) => [k, { kind: r.kind, help: r.help }])) as { [P in keyof R]: FieldSpec };
}

/** The files and awspca keys; a YAML `upstream:` block may spell them by their block field name. */
export const UPSTREAM_BLOCK_ROWS = {
  upstreamMode: row(
    awsPcaUpstreamSchema,
    'mode',
    'string',
    "awspca only: intermediate (PCA signs meshca's intermediate) or ra (every workload CSR goes to PCA, at most 7 days)",
  ),
  upstreamCertFile: row(filesUpstreamSchema, 'certFile', 'string', 'files upstream: PEM certificate of the CA that signs the intermediate'),
  upstreamKeyFile: row(filesUpstreamSchema, 'keyFile', 'string', 'files upstream: PEM key of that CA'),
  upstreamChainFile: row(filesUpstreamSchema, 'chainFile', 'string', 'files upstream: issuers above the certificate, root last'),
  awspcaArn: row(awsPcaUpstreamSchema, 'arn', 'string', 'AWS Private CA ARN (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID)'),
  awspcaRegion: row(awsPcaUpstreamSchema, 'region', 'string', "AWS region of the CA (default: the ARN's)"),
  awspcaEndpointUrl: row(
    awsPcaUpstreamSchema,
    'endpointUrl',
    'string',
    'ACM PCA endpoint URL (default: AWS_ENDPOINT_URL or the regional endpoint)',
  ),
  awspcaTemplateArn: row(
    awsPcaUpstreamSchema,
    'templateArn',
    'string',
    'PCA template for the intermediate (default SubordinateCACertificate_PathLen0/V1)',
  ),
  awspcaSigningAlgorithm: row(awsPcaUpstreamSchema, 'signingAlgorithm', 'string', 'PCA signing algorithm (default: matched to the CA key)'),
  awspcaIssueRateLimit: row(
    awsPcaUpstreamSchema,
    'issueRateLimit',
    'number',
    'RA mode on PostgreSQL: IssueCertificate calls per second shared by all replicas (PCA quota; default 25, 0: none)',
  ),
};

/** The k8s-csr keys, listed with the other Kubernetes settings (config/k8s.ts). */
export const K8S_CSR_BLOCK_ROWS = {
  k8sSignerName: row(
    k8sCsrUpstreamSchema,
    'signerName',
    'string',
    'k8s-csr upstream: spec.signerName of the CertificateSigningRequests meshca creates (e.g. example.com/foo)',
  ),
  k8sApprove: row(
    k8sCsrUpstreamSchema,
    'approve',
    'bool',
    'k8s-csr upstream: approve our own CSRs through /approval (RBAC approve on signers/<name>)',
  ),
  k8sCsrTimeout: row(k8sCsrUpstreamSchema, 'timeoutSeconds', 'duration', "k8s-csr upstream: how long to wait for the signer's certificate"),
  externalCaRoot: row(
    k8sCsrUpstreamSchema,
    'externalCaRoot',
    'string',
    "k8s-csr upstream: PEM root(s) the signer chains to (istiod's /etc/external-ca-cert/root-cert.pem)",
  ),
};

export const K8S_CSR_SHAPE = shapeOf(K8S_CSR_BLOCK_ROWS);
export const K8S_CSR_FIELDS = fieldsOf(K8S_CSR_BLOCK_ROWS);

/** Every key that fills a field of an upstream block: the key's row, or a general key the block also reads. */
export const BLOCK_KEYS: Record<string, { upstream: string; field: string; required?: boolean }> = {
  ...UPSTREAM_BLOCK_ROWS,
  ...K8S_CSR_BLOCK_ROWS,
  kubeconfig: { upstream: 'k8s-csr', field: 'kubeconfig' },
};

export const UPSTREAM_SHAPE = {
  upstream: z.enum(UPSTREAM_TYPES).default('local'),
  ...shapeOf(UPSTREAM_BLOCK_ROWS),
  intermediateTtl: duration.optional(),
  renewBefore: duration.optional(),
  pcaApiAddr: hostPort.optional(),
  // The secret is never echoed: a zod message names the field, not the value.
  pcaAccessKey: z
    .array(z.string().regex(/^[A-Za-z0-9]{4,128}:.{8,}$/, 'expected ACCESS_KEY_ID:SECRET (id alphanumeric, secret at least 8 characters)'))
    .default([]),
  pcaAccessKeysFile: z.string().min(1).optional(),
  pcaInsecure: z.boolean().default(false),
  pcaUsageMode: z.enum(['general-purpose', 'short-lived']).default('general-purpose'),
  pcaRegion: awsRegion.optional(),
  pcaAccount: z
    .string()
    .regex(/^\d{12}$/, 'expected a 12-digit AWS account id')
    .default('000000000000'),
};

export const UPSTREAM_FIELDS = {
  upstream: {
    kind: 'string',
    help: 'who signs the cluster intermediate: local (the root in the state directory), files, awspca; or k8s-csr (RA: every certificate through the Kubernetes CSR API)',
  },
  ...fieldsOf(UPSTREAM_BLOCK_ROWS),
  intermediateTtl: { kind: 'duration', help: 'lifetime asked of the upstream for each intermediate (default: --intermediate-days)' },
  renewBefore: { kind: 'duration', help: 'renew the upstream intermediate this long before it expires (default: a third of its TTL)' },
  pcaApiAddr: { kind: 'string', help: 'also serve the PCA-compatible API (as `meshca pca-api`) on this host:port' },
  pcaAccessKey: {
    kind: 'list',
    help: 'PCA API: access key ID:SECRET accepted in SigV4 signatures (secret at least 8 characters, e.g. AKIDEXAMPLE:wJalrXUtnFEMI)',
  },
  pcaAccessKeysFile: { kind: 'string', help: 'PCA API: file of ID:SECRET lines' },
  pcaInsecure: { kind: 'bool', help: 'PCA API: allow running without access keys, on a loopback address only' },
  pcaUsageMode: { kind: 'string', help: 'PCA API: usage mode reported and enforced (general-purpose, short-lived)' },
  pcaRegion: {
    kind: 'string',
    help: 'PCA API: region in its ARNs and SigV4 scope (default: $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1)',
  },
  pcaAccount: { kind: 'string', help: 'PCA API: 12-digit account id in its ARNs' },
} as const satisfies Record<keyof typeof UPSTREAM_SHAPE, FieldSpec>;

interface UpstreamSettings {
  upstream: (typeof UPSTREAM_TYPES)[number];
  upstreamMode: 'intermediate' | 'ra';
  intermediateTtl?: number;
  intermediateDays: number;
  renewBefore?: number;
  workers: number;
}

/** The lifetime asked of an upstream for each intermediate. */
export function intermediateTtlOf(c: Pick<UpstreamSettings, 'intermediateTtl' | 'intermediateDays'>): number {
  return c.intermediateTtl ?? c.intermediateDays * DAY;
}

/** Cross-field rules, called from the schema's superRefine. */
export function refineUpstream(c: UpstreamSettings & Record<string, unknown>, ctx: z.RefinementCtx): void {
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  for (const [key, r] of Object.entries(BLOCK_KEYS)) {
    if (r.required && r.upstream === c.upstream && c[key] === undefined) issue(key, `required when upstream is ${c.upstream}`);
  }
  if (c.upstreamMode === 'ra') {
    // k8s-csr is always RA (config/k8s.ts); awspca may be either.
    if (c.upstream !== 'awspca' && c.upstream !== 'k8s-csr')
      issue('upstreamMode', `ra (registration authority) mode needs upstream awspca, not ${c.upstream}`);
    // Every RA issuance waits on PCA (its quota is 25 IssueCertificate/s), so more processes add
    // nothing, and each would spend the quota on its own; on PostgreSQL they draw on one shared budget.
    if (c.workers !== 1 && storeKindOf(c as Parameters<typeof storeKindOf>[0]) !== 'postgres')
      issue(
        'workers',
        'ra mode runs in a single process unless the store is postgres (whose replicas share one PCA budget); PCA, not local CPU, bounds its throughput',
      );
  }
  const ttl = intermediateTtlOf(c);
  if (c.upstream !== 'local' && c.renewBefore !== undefined && c.renewBefore >= ttl) {
    issue('renewBefore', `renewBefore ${c.renewBefore}s must be shorter than the intermediate TTL ${ttl}s`);
  }
}
