import { z } from 'zod';
import { duration, hostPort } from './types.js';
import { invalid } from '../pki/errors.js';
import { CA_ARN_RE, PCA_SIGNING_ALGORITHMS } from '../upstream/awspca/config.js';
import type { FieldSpec } from './fields.js';
import type { ServeConfig } from './schema.js';

/**
 * The `meshca serve` keys for an upstream CA (who signs the cluster intermediate, or in RA mode
 * every workload certificate) and for the PCA-compatible API served next to HTTP. Kept in their own
 * file and spread into the one schema (schema.ts) and field table (fields.ts), so that they stay
 * flat keys with a flag and an env variable each, like every other setting.
 */

const DAY = 86_400;

const region = z.string().trim().regex(/^[a-z0-9-]+$/, 'expected an AWS region such as us-east-1');

export const UPSTREAM_TYPES = ['local', 'files', 'awspca', 'k8s-csr'] as const;

export const UPSTREAM_SHAPE = {
  upstream: z.enum(UPSTREAM_TYPES).default('local'),
  upstreamMode: z.enum(['intermediate', 'ra']).default('intermediate'),
  upstreamCertFile: z.string().min(1).optional(),
  upstreamKeyFile: z.string().min(1).optional(),
  upstreamChainFile: z.string().min(1).optional(),
  awspcaArn: z.string().trim().regex(CA_ARN_RE, 'expected an ACM PCA CA ARN: arn:aws:acm-pca:<region>:<account>:certificate-authority/<id>').optional(),
  awspcaRegion: region.optional(),
  awspcaEndpointUrl: z.url({ protocol: /^https?$/ }).optional(),
  awspcaTemplateArn: z.string().trim().min(1).optional(),
  awspcaSigningAlgorithm: z.enum(PCA_SIGNING_ALGORITHMS).optional(),
  intermediateTtl: duration.optional(),
  renewBefore: duration.optional(),
  pcaApi: hostPort.optional(),
  // The secret is never echoed: a zod message names the field, not the value.
  pcaAccessKey: z.array(z.string().regex(/^[A-Za-z0-9]{4,128}:.{8,}$/, 'expected ACCESS_KEY_ID:SECRET (id alphanumeric, secret at least 8 characters)')).default([]),
  pcaAccessKeysFile: z.string().min(1).optional(),
  pcaInsecure: z.boolean().default(false),
  pcaUsageMode: z.enum(['general-purpose', 'short-lived']).default('general-purpose'),
  pcaRegion: region.optional(),
  pcaAccount: z.string().regex(/^\d{12}$/, 'expected a 12-digit AWS account id').default('000000000000'),
};

export const UPSTREAM_FIELDS = {
  upstream: { kind: 'string', help: 'who signs the cluster intermediate: local (the root in the state directory), files, awspca; or k8s-csr (RA: every certificate through the Kubernetes CSR API)' },
  upstreamMode: { kind: 'string', help: 'awspca only: intermediate (PCA signs meshca\'s intermediate) or ra (every workload CSR goes to PCA, at most 7 days)' },
  upstreamCertFile: { kind: 'string', help: 'files upstream: PEM certificate of the CA that signs the intermediate' },
  upstreamKeyFile: { kind: 'string', help: 'files upstream: PEM key of that CA' },
  upstreamChainFile: { kind: 'string', help: 'files upstream: issuers above the certificate, root last' },
  awspcaArn: { kind: 'string', help: 'AWS Private CA ARN (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID)' },
  awspcaRegion: { kind: 'string', help: 'AWS region of the CA (default: the ARN\'s)' },
  awspcaEndpointUrl: { kind: 'string', help: 'ACM PCA endpoint URL (default: AWS_ENDPOINT_URL or the regional endpoint)' },
  awspcaTemplateArn: { kind: 'string', help: 'PCA template for the intermediate (default SubordinateCACertificate_PathLen0/V1)' },
  awspcaSigningAlgorithm: { kind: 'string', help: 'PCA signing algorithm (default: matched to the CA key)' },
  intermediateTtl: { kind: 'duration', help: 'lifetime asked of the upstream for each intermediate (default: --intermediate-days)' },
  renewBefore: { kind: 'duration', help: 'renew the upstream intermediate this long before it expires (default: a third of its TTL)' },
  pcaApi: { kind: 'string', help: 'also serve the PCA-compatible API (as `meshca pca-api`) on this host:port' },
  pcaAccessKey: { kind: 'list', help: 'PCA API: access key ID:SECRET accepted in SigV4 signatures' },
  pcaAccessKeysFile: { kind: 'string', help: 'PCA API: file of ID:SECRET lines' },
  pcaInsecure: { kind: 'bool', help: 'PCA API: allow running without access keys, on a loopback address only' },
  pcaUsageMode: { kind: 'string', help: 'PCA API: usage mode reported and enforced (general-purpose, short-lived)' },
  pcaRegion: { kind: 'string', help: 'PCA API: region in its ARNs and SigV4 scope (default: $AWS_REGION or us-east-1)' },
  pcaAccount: { kind: 'string', help: 'PCA API: 12-digit account id in its ARNs' },
} as const satisfies Record<keyof typeof UPSTREAM_SHAPE, FieldSpec>;

interface UpstreamSettings {
  upstream: (typeof UPSTREAM_TYPES)[number];
  upstreamMode: 'intermediate' | 'ra';
  upstreamCertFile?: string;
  upstreamKeyFile?: string;
  awspcaArn?: string;
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
export function refineUpstream(c: UpstreamSettings, ctx: z.RefinementCtx): void {
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if (c.upstream === 'awspca' && !c.awspcaArn) issue('awspcaArn', 'required when upstream is awspca');
  if (c.upstream === 'files') {
    if (!c.upstreamCertFile) issue('upstreamCertFile', 'required when upstream is files');
    if (!c.upstreamKeyFile) issue('upstreamKeyFile', 'required when upstream is files');
  }
  if (c.upstreamMode === 'ra') {
    // k8s-csr is always RA (config/k8s.ts); awspca may be either.
    if (c.upstream !== 'awspca' && c.upstream !== 'k8s-csr') issue('upstreamMode', `ra (registration authority) mode needs upstream awspca, not ${c.upstream}`);
    // Every RA issuance waits on PCA (its quota is 25 IssueCertificate/s), so more processes add nothing; one process also keeps one PCA client.
    if (c.workers !== 1) issue('workers', 'ra mode runs in a single process; PCA, not local CPU, bounds its throughput');
  }
  const ttl = intermediateTtlOf(c);
  if (c.upstream !== 'local' && c.renewBefore !== undefined && c.renewBefore >= ttl) {
    issue('renewBefore', `renewBefore ${c.renewBefore}s must be shorter than the intermediate TTL ${ttl}s`);
  }
}

/** `upstream:` block key -> flat key, for YAML users who prefer the nested form. */
const NESTED: Record<string, keyof typeof UPSTREAM_SHAPE> = {
  type: 'upstream',
  mode: 'upstreamMode',
  certFile: 'upstreamCertFile',
  keyFile: 'upstreamKeyFile',
  chainFile: 'upstreamChainFile',
  arn: 'awspcaArn',
  region: 'awspcaRegion',
  endpointUrl: 'awspcaEndpointUrl',
  templateArn: 'awspcaTemplateArn',
  signingAlgorithm: 'awspcaSigningAlgorithm',
  intermediateTtl: 'intermediateTtl',
  renewBefore: 'renewBefore',
};

/**
 * `upstream: {type: awspca, arn: ..., mode: ra}` in a config file becomes the flat keys, so that one
 * schema validates both spellings; `upstream: awspca` (a string) passes through unchanged.
 */
export function flattenUpstreamBlock(doc: Record<string, unknown>, file: string): Record<string, unknown> {
  const block = doc.upstream;
  if (block === null || typeof block !== 'object' || Array.isArray(block)) return doc;
  const out: Record<string, unknown> = { ...doc };
  delete out.upstream;
  for (const [k, v] of Object.entries(block)) {
    const key = NESTED[k];
    if (!key) throw invalid('bad_config', `invalid configuration: unknown field "upstream.${k}" (in ${file}); the upstream block takes ${Object.keys(NESTED).join(', ')}`);
    if (key !== 'upstream' && key in doc) throw invalid('bad_config', `invalid configuration: "upstream.${k}" and "${key}" are both set in ${file}; keep one`);
    out[key] = v;
  }
  return out;
}

/** The upstream's config block built from the flat serve keys; validated by the upstream's own schema. */
export function upstreamBlock(c: ServeConfig): Record<string, unknown> {
  if (c.upstream === 'files') return { type: 'files', certFile: c.upstreamCertFile, keyFile: c.upstreamKeyFile, chainFile: c.upstreamChainFile };
  if (c.upstream === 'awspca') {
    return {
      type: 'awspca',
      arn: c.awspcaArn,
      region: c.awspcaRegion,
      endpointUrl: c.awspcaEndpointUrl,
      templateArn: c.awspcaTemplateArn,
      signingAlgorithm: c.awspcaSigningAlgorithm,
      mode: c.upstreamMode,
    };
  }
  if (c.upstream === 'k8s-csr') {
    // Issue 7: always RA mode; the flat k8s keys are in config/k8s.ts.
    return { type: 'k8s-csr', signerName: c.k8sSignerName, approve: c.k8sApprove, timeoutSeconds: c.k8sCsrTimeout, externalCaRoot: c.externalCaRoot, kubeconfig: c.kubeconfig };
  }
  return { type: c.upstream };
}
