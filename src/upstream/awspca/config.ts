import { z } from 'zod';

export const PCA_SIGNING_ALGORITHMS = [
  'SHA256WITHECDSA',
  'SHA384WITHECDSA',
  'SHA512WITHECDSA',
  'SHA256WITHRSA',
  'SHA384WITHRSA',
  'SHA512WITHRSA',
] as const;
export type PcaSigningAlgorithm = (typeof PCA_SIGNING_ALGORITHMS)[number];

/** arn:<partition>:acm-pca:<region>:<account>:certificate-authority/<id> */
export const CA_ARN_RE = /^arn:(aws[a-z-]*):acm-pca:([a-z0-9-]+):(\d{12}):certificate-authority\/([A-Za-z0-9-]+)$/;

/** Also the region of `meshca serve --pca-api-addr`, which names itself like the real service. */
export const awsRegion = z
  .string()
  .trim()
  .regex(/^[a-z0-9-]+$/, 'expected an AWS region such as us-east-1');

const retrySchema = z.strictObject({
  /** Attempts per API call, the first included. */
  maxAttempts: z.int().min(1).max(50).default(8),
  baseDelayMs: z.int().min(1).max(60_000).default(200),
  maxDelayMs: z.int().min(1).max(600_000).default(20_000),
});

/**
 * `upstream: {type: awspca}`. Credentials, region and endpoint also come from the standard AWS
 * chain (AWS_ACCESS_KEY_ID..., AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL[_ACM_PCA], ~/.aws/config).
 */
export const awsPcaUpstreamSchema = z.strictObject({
  type: z.literal('awspca'),
  /** The signing CA. Whitespace around it is dropped (the getistio example carries leading spaces). */
  arn: z.string().trim().regex(CA_ARN_RE, 'expected an ACM PCA CA ARN: arn:aws:acm-pca:<region>:<account>:certificate-authority/<id>'),
  /** Default: the ARN's region. */
  region: awsRegion.optional(),
  endpointUrl: z.url({ protocol: /^https?$/ }).optional(),
  /** Template for intermediates; default SubordinateCACertificate_PathLen<pathLen>/V1. */
  templateArn: z.string().trim().min(1).optional(),
  /** Path length of intermediates when templateArn is not given (PCA offers 0 to 3). */
  pathLen: z.int().min(0).max(3).optional(),
  /** Template for workload certificates in RA mode; default EndEntityCertificate/V1. */
  workloadTemplateArn: z.string().trim().min(1).optional(),
  /** Default: SHA256WITHRSA or SHA256/384WITHECDSA, matched to the CA's key. */
  signingAlgorithm: z.enum(PCA_SIGNING_ALGORITHMS).optional(),
  /** intermediate: PCA signs meshca's intermediate. ra: every workload CSR goes to PCA (short-lived, at most 7 days). */
  mode: z.enum(['intermediate', 'ra']).default('intermediate'),
  retry: retrySchema.prefault({}),
  /** GetCertificate polling while PCA answers RequestInProgressException. */
  pollIntervalMs: z.int().min(1).max(60_000).default(250),
  pollTimeoutMs: z.int().min(1).max(3_600_000).default(300_000),
  /**
   * IssueCertificate calls per second that meshca allows itself (PCA's quota is 25 per account and
   * region); with replicas on PostgreSQL a budget shared by every replica. 0: no limit.
   */
  issueRateLimit: z.number().min(0).max(100_000).default(25),
  /** Per-HTTP-request timeout. */
  requestTimeoutMs: z.int().min(100).max(600_000).default(30_000),
});

export type AwsPcaUpstreamConfig = z.infer<typeof awsPcaUpstreamSchema>;
export type AwsPcaUpstreamInput = z.input<typeof awsPcaUpstreamSchema>;
export type RetryPolicy = z.infer<typeof retrySchema>;

export function parseCaArn(arn: string): { partition: string; region: string; account: string; id: string } | undefined {
  const m = CA_ARN_RE.exec(arn);
  return m ? { partition: m[1], region: m[2], account: m[3], id: m[4] } : undefined;
}
