import { homedir } from 'node:os';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { invalid } from '../pki/errors.js';
import type { SubjectSpec } from '../pki/name.js';

/**
 * The `getistio gen-ca --config-file` YAML (tetratelabs/getistio, later getmesh), AWS provider only.
 * Field names are getistio's: camelCase for its own options, lower-case for the embedded Go
 * x509.CertificateRequest (yaml.v2 lower-cases Go field names). Strict: an unknown field is an error
 * naming its path, where getistio would silently ignore it.
 */

const CA_ARN = /^arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority\/[A-Za-z0-9-]+$/;
const TEMPLATE_ARN = /^arn:aws[a-z-]*:acm-pca:::template\/[A-Za-z0-9_]+\/V\d+$/;
const SIGNING = ['SHA256WITHRSA', 'SHA384WITHRSA', 'SHA512WITHRSA', 'SHA256WITHECDSA', 'SHA384WITHECDSA', 'SHA512WITHECDSA'] as const;
const KEY_LENGTHS = [2048, 3072, 4096];

/** Go writes nil slices as `null` or nothing, so both mean "none". */
const list = z.array(z.string().trim().min(1, 'must not be empty')).nullish();
/** Go zero values that `getistio gen-ca --help` prints in its example; accepted only when still zero. */
const zeroList = z.array(z.unknown()).max(0, 'is not supported; leave it empty').nullish();
const zeroInt = z.literal(0, { error: 'is not supported; leave it 0' }).nullish();

const subjectSchema = z.strictObject({
  commonname: z.string().trim().nullish(),
  country: z
    .array(
      z
        .string()
        .trim()
        .regex(/^[A-Za-z]{2}$/, 'must be a two-letter country code such as US'),
    )
    .nullish(),
  organization: list,
  organizationalunit: list,
  /** The spelling in getistio's AWS tutorial (which getistio itself ignores); meshca honours it. */
  organizationunit: list,
  locality: list,
  province: list,
  streetaddress: list,
  postalcode: list,
  serialnumber: z.string().trim().nullish(),
  names: zeroList,
  extranames: zeroList,
});

const csrParamsSchema = z.strictObject({
  subject: subjectSchema.nullish(),
  dnsnames: list,
  emailaddresses: z.array(z.email('must be an email address')).nullish(),
  ipaddresses: z.array(z.union([z.ipv4(), z.ipv6()], { error: 'must be an IP address' })).nullish(),
  uris: z.array(z.url('must be a URI')).nullish(),
  raw: zeroList,
  rawtbscertificaterequest: zeroList,
  rawsubjectpublickeyinfo: zeroList,
  rawsubject: zeroList,
  version: zeroInt,
  signature: zeroList,
  signaturealgorithm: zeroInt,
  publickeyalgorithm: zeroInt,
  publickey: z.null({ error: 'is not supported; meshca generates the key' }).optional(),
  attributes: zeroList,
  extensions: zeroList,
  extraextensions: zeroList,
});

export const getistioConfigSchema = z.strictObject({
  providerName: z.literal('aws', {
    error: (i) => `must be "aws": meshca gen-ca signs with AWS Private CA only (got ${JSON.stringify(i.input)})`,
  }),
  disableSecretCreation: z.boolean().nullish(),
  providerConfig: z.strictObject({
    aws: z.strictObject({
      // The getistio tutorial's ARN has leading spaces inside the quotes: trim before checking.
      signingCAArn: z
        .string()
        .trim()
        .regex(CA_ARN, 'must be an ACM PCA CA ARN: arn:aws:acm-pca:<region>:<account>:certificate-authority/<id>'),
      templateArn: z
        .string()
        .trim()
        .regex(TEMPLATE_ARN, 'must be a PCA template ARN such as arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1')
        .nullish(),
      signingAlgorithm: z.enum(SIGNING, { error: `must be one of ${SIGNING.join(', ')}` }).nullish(),
    }),
    gcp: z
      .unknown()
      .refine((v) => v === undefined, 'is not supported: meshca gen-ca uses AWS Private CA (providerConfig.aws)')
      .optional(),
  }),
  certificateParameters: z
    .strictObject({
      secretOptions: z
        .strictObject({
          istioCANamespace: z
            .string()
            .trim()
            .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a Kubernetes namespace name')
            .nullish(),
          secretFilePath: z.string().trim().min(1).nullish(),
          overrideExistingCACertsSecret: z.boolean().nullish(),
          /** The older name of overrideExistingCACertsSecret. */
          force: z.boolean().nullish(),
        })
        .nullish(),
      caOptions: z
        .strictObject({
          validityDays: z.int('must be a whole number of days').min(1, 'must be at least 1').max(36_500, 'must be at most 36500').nullish(),
          keyLength: z
            .int('must be a number of bits')
            .refine((n) => KEY_LENGTHS.includes(n), {
              error: (i) => `RSA key length ${String(i.input)} is not accepted; use 2048, 3072 or 4096`,
            })
            .nullish(),
          certSigningRequestParams: csrParamsSchema.nullish(),
        })
        .nullish(),
    })
    .nullish(),
});

export type GetistioConfig = z.infer<typeof getistioConfigSchema>;

/** What gen-ca does, with getistio's defaults applied. */
export interface GenCaPlan {
  signingCAArn: string;
  templateArn: string;
  /** Unset: chosen from the CA's key algorithm. */
  signingAlgorithm?: (typeof SIGNING)[number];
  namespace: string;
  overrideExisting: boolean;
  disableSecretCreation: boolean;
  /** Extra place for the Secret YAML (getistio's secretFilePath), with ~ expanded. */
  secretFilePath?: string;
  validityDays: number;
  keyLength: 2048 | 3072 | 4096;
  subject: SubjectSpec;
  sans: { dnsNames: string[]; emailAddresses: string[]; ipAddresses: string[]; uris: string[] };
}

/** `a.b[1].c` */
function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/** One line per problem, each naming the field path. */
export function getistioProblems(error: z.ZodError): string[] {
  const out: string[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const k of issue.keys) out.push(`${formatPath([...issue.path, k])}: unknown field`);
    } else {
      out.push(`${formatPath(issue.path) || '(top level)'}: ${issue.message.replace(/^Invalid input: /, '')}`);
    }
  }
  return out;
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? homedir() + p.slice(1) : p;
}

export function planFromConfig(c: GetistioConfig): GenCaPlan {
  const aws = c.providerConfig.aws;
  const secret = c.certificateParameters?.secretOptions ?? {};
  const ca = c.certificateParameters?.caOptions ?? {};
  const req = ca.certSigningRequestParams ?? {};
  const s = req.subject ?? {};
  const subject: SubjectSpec = {
    commonName: s.commonname || undefined,
    country: s.country ?? undefined,
    province: s.province ?? undefined,
    locality: s.locality ?? undefined,
    streetAddress: s.streetaddress ?? undefined,
    postalCode: s.postalcode ?? undefined,
    organization: s.organization ?? undefined,
    organizationalUnit: [...(s.organizationalunit ?? []), ...(s.organizationunit ?? [])],
    serialNumber: s.serialnumber || undefined,
  };
  const empty = !subject.commonName && Object.values(subject).every((v) => v === undefined || (Array.isArray(v) && v.length === 0));
  // getistio's default subject, used only when none is given at all.
  if (empty) Object.assign(subject, { commonName: 'Istio CA', organization: ['Istio'] });
  return {
    signingCAArn: aws.signingCAArn,
    templateArn: aws.templateArn ?? 'arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1',
    signingAlgorithm: aws.signingAlgorithm ?? undefined,
    namespace: secret.istioCANamespace ?? 'istio-system',
    overrideExisting: secret.overrideExistingCACertsSecret ?? secret.force ?? false,
    disableSecretCreation: c.disableSecretCreation ?? false,
    secretFilePath: secret.secretFilePath ? expandHome(secret.secretFilePath) : undefined,
    validityDays: ca.validityDays ?? 3650,
    keyLength: (ca.keyLength ?? 2048) as 2048 | 3072 | 4096,
    subject,
    sans: {
      dnsNames: req.dnsnames ?? [],
      emailAddresses: req.emailaddresses ?? [],
      ipAddresses: req.ipaddresses ?? [],
      uris: req.uris ?? [],
    },
  };
}

/** Parses and validates the YAML text; every problem is reported at once, each with its field path. */
export function parseGetistioConfig(text: string, file: string): GenCaPlan {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) throw invalid('bad_config', `${file} is not valid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
  const data: unknown = doc.toJS();
  if (!data || typeof data !== 'object' || Array.isArray(data))
    throw invalid('bad_config', `${file}: expected a YAML mapping with providerName, providerConfig and certificateParameters`);
  const parsed = getistioConfigSchema.safeParse(data);
  if (!parsed.success) {
    throw invalid('bad_config', `${file} is not a valid gen-ca configuration:\n  ${getistioProblems(parsed.error).join('\n  ')}`);
  }
  return planFromConfig(parsed.data);
}
