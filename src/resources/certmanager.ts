import { isIP } from 'node:net';
import { z } from 'zod';
import { formatGoDuration, parseGoDuration } from './duration.js';
import { objectName, type Condition, type Resource } from './meta.js';

/** cert-manager's API groups: its own kinds, and the AWS Private CA issuer plugin's. */
export const CERT_MANAGER_GROUP = 'cert-manager.io';
export const AWSPCA_GROUP = 'awspca.cert-manager.io';

export const HOUR_MS = 3_600_000;
/** cert-manager's defaults and limits (webhook validation). */
export const DEFAULT_DURATION_MS = 2160 * HOUR_MS;
export const MIN_DURATION_MS = HOUR_MS;
export const MIN_RENEW_BEFORE_MS = 5 * 60_000;

/** The key usages cert-manager accepts in `spec.usages`, spelled as it spells them. */
export const KEY_USAGES = [
  'signing',
  'digital signature',
  'content commitment',
  'key encipherment',
  'key agreement',
  'data encipherment',
  'cert sign',
  'crl sign',
  'encipher only',
  'decipher only',
  'any',
  'server auth',
  'client auth',
  'code signing',
  'email protection',
  's/mime',
  'ipsec end system',
  'ipsec tunnel',
  'ipsec user',
  'timestamping',
  'ocsp signing',
  'microsoft sgc',
  'netscape sgc',
] as const;
export type KeyUsage = (typeof KEY_USAGES)[number];

export const goDuration = z.string().refine((v) => parseGoDuration(v) !== undefined, {
  message: 'must be a duration such as 2160h, 1h30m or 45m (units h, m, s, ms)',
});

const stringList = z.array(z.string().min(1));

export const SubjectSchema = z.strictObject({
  organizations: stringList.optional(),
  countries: stringList.optional(),
  organizationalUnits: stringList.optional(),
  localities: stringList.optional(),
  provinces: stringList.optional(),
  streetAddresses: stringList.optional(),
  postalCodes: stringList.optional(),
  serialNumber: z.string().optional(),
});
export type CertificateSubject = z.infer<typeof SubjectSchema>;

export const PrivateKeySchema = z.strictObject({
  algorithm: z.enum(['RSA', 'ECDSA', 'Ed25519']).optional(),
  size: z.number().int().optional(),
  encoding: z.enum(['PKCS1', 'PKCS8']).optional(),
  rotationPolicy: z.enum(['Never', 'Always']).optional(),
});
export type PrivateKeySpec = z.infer<typeof PrivateKeySchema>;

export const IssuerRefSchema = z.strictObject({
  name: z.string().min(1, 'must name the issuer'),
  kind: z.string().optional(),
  group: z.string().optional(),
});
export type IssuerRef = z.infer<typeof IssuerRefSchema>;

/** The issuer kinds meshca can resolve, by API group. */
export const ISSUER_KINDS: Record<string, string[]> = {
  [CERT_MANAGER_GROUP]: ['Issuer', 'ClusterIssuer'],
  [AWSPCA_GROUP]: ['AWSPCAIssuer', 'AWSPCAClusterIssuer'],
};

/** issuerRef with cert-manager's defaults: kind Issuer, group cert-manager.io. */
export function normalizeIssuerRef(ref: IssuerRef): Required<IssuerRef> {
  return { name: ref.name, kind: ref.kind || 'Issuer', group: ref.group || CERT_MANAGER_GROUP };
}

function checkIssuerRef(ref: IssuerRef, ctx: z.RefinementCtx, path: (string | number)[]): void {
  const r = normalizeIssuerRef(ref);
  const kinds = ISSUER_KINDS[r.group];
  if (!kinds) {
    ctx.addIssue({
      code: 'custom',
      path: [...path, 'group'],
      message: `unknown issuer group "${r.group}"; meshca resolves ${Object.keys(ISSUER_KINDS).join(', ')}`,
    });
  } else if (!kinds.includes(r.kind)) {
    ctx.addIssue({
      code: 'custom',
      path: [...path, 'kind'],
      message: `unknown issuer kind "${r.kind}" in group ${r.group}; use one of ${kinds.join(', ')}`,
    });
  }
}

function checkUsages(usages: string[], ctx: z.RefinementCtx): void {
  usages.forEach((u, i) => {
    if (!(KEY_USAGES as readonly string[]).includes(u)) {
      ctx.addIssue({
        code: 'custom',
        path: ['usages', i],
        message: `unknown usage "${u}"; use cert-manager names such as "digital signature", "key encipherment", "cert sign", "server auth", "client auth"`,
      });
    }
  });
}

const CertificateSpecBase = z.strictObject({
  secretName: objectName,
  commonName: z.string().max(64, 'must be at most 64 characters (X.509 upper bound)').optional(),
  dnsNames: stringList.optional(),
  uris: stringList.optional(),
  ipAddresses: stringList.optional(),
  emailAddresses: stringList.optional(),
  subject: SubjectSchema.optional(),
  duration: goDuration.optional(),
  renewBefore: goDuration.optional(),
  renewBeforePercentage: z.number().int().optional(),
  isCA: z.boolean().optional(),
  usages: z.array(z.string()).optional(),
  privateKey: PrivateKeySchema.optional(),
  issuerRef: IssuerRefSchema,
  secretTemplate: z
    .strictObject({ annotations: z.record(z.string(), z.string()).optional(), labels: z.record(z.string(), z.string()).optional() })
    .optional(),
  revisionHistoryLimit: z.number().int().min(1).optional(),
  encodeUsagesInRequest: z.boolean().optional(),
});

/** Fields of cert-manager's Certificate that meshca refuses by name rather than as unknown. */
export const UNSUPPORTED_CERTIFICATE_FIELDS = ['keystores', 'literalSubject', 'nameConstraints', 'otherNames', 'additionalOutputFormats'];

/** Fields as they are typed, or undefined: the rules below run even when other fields are mistyped. */
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const strs = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const obj = (v: unknown): Record<string, unknown> | undefined =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;

/**
 * Refinements that report even when the shape has other problems (zod skips them otherwise),
 * so that one run lists every fault of a manifest.
 */
export const ALWAYS = { when: () => true } as const;

/** The cert-manager webhook's rules, with each message on the field at fault. */
export const CertificateSpecSchema = CertificateSpecBase.superRefine((raw, ctx) => {
  const s = obj(raw);
  if (!s) return;
  const hasName = !!str(s.commonName) || ['dnsNames', 'uris', 'ipAddresses', 'emailAddresses'].some((k) => strs(s[k]).length > 0);
  if (!hasName) {
    ctx.addIssue({
      code: 'custom',
      path: [],
      message: 'at least one of commonName, dnsNames, uris, ipAddresses or emailAddresses must be set',
    });
  }
  strs(s.ipAddresses).forEach((ip, i) => {
    if (!isIP(ip)) ctx.addIssue({ code: 'custom', path: ['ipAddresses', i], message: `"${ip}" is not an IP address` });
  });
  strs(s.emailAddresses).forEach((e, i) => {
    if (!/^[^@\s]+@[^@\s]+$/.test(e))
      ctx.addIssue({ code: 'custom', path: ['emailAddresses', i], message: `"${e}" is not an email address` });
  });
  strs(s.uris).forEach((u, i) => {
    if (!URL.canParse(u)) ctx.addIssue({ code: 'custom', path: ['uris', i], message: `"${u}" is not a URI` });
  });
  const durationText = str(s.duration);
  const duration = s.duration === undefined ? DEFAULT_DURATION_MS : durationText !== undefined ? parseGoDuration(durationText) : undefined;
  if (duration !== undefined && duration < MIN_DURATION_MS) {
    ctx.addIssue({
      code: 'custom',
      path: ['duration'],
      message: `certificate duration ${durationText} must be at least ${formatGoDuration(MIN_DURATION_MS)}`,
    });
  }
  const rbText = str(s.renewBefore);
  const pct = num(s.renewBeforePercentage);
  if (rbText !== undefined) {
    const rb = parseGoDuration(rbText);
    if (rb !== undefined && rb < MIN_RENEW_BEFORE_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['renewBefore'],
        message: `certificate renewBefore ${rbText} must be at least ${formatGoDuration(MIN_RENEW_BEFORE_MS)}`,
      });
    }
    if (rb !== undefined && duration !== undefined && rb >= duration) {
      ctx.addIssue({
        code: 'custom',
        path: ['renewBefore'],
        message: `certificate duration ${formatGoDuration(duration)} must be greater than renewBefore ${formatGoDuration(rb)}`,
      });
    }
    if (pct !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['renewBeforePercentage'],
        message: 'renewBefore and renewBeforePercentage are mutually exclusive',
      });
    }
  }
  if (pct !== undefined && (pct <= 0 || pct >= 100)) {
    ctx.addIssue({
      code: 'custom',
      path: ['renewBeforePercentage'],
      message: `renewBeforePercentage must be between 0 and 100 exclusive, got ${pct}`,
    });
  }
  checkPrivateKey(obj(s.privateKey), ctx);
  checkUsages(strs(s.usages), ctx);
  const ref = obj(s.issuerRef);
  if (str(ref?.name)) checkIssuerRef({ name: str(ref!.name)!, kind: str(ref!.kind), group: str(ref!.group) }, ctx, ['issuerRef']);
}, ALWAYS);
export type CertificateSpec = z.infer<typeof CertificateSpecBase>;

function checkPrivateKey(pk: Record<string, unknown> | undefined, ctx: z.RefinementCtx): void {
  if (!pk) return;
  const alg = pk.algorithm ?? 'RSA';
  if (alg === 'Ed25519') {
    ctx.addIssue({
      code: 'custom',
      path: ['privateKey', 'algorithm'],
      message: 'Ed25519 is not supported by meshca (Istio and the PKI core accept RSA and ECDSA); use RSA or ECDSA',
    });
    return;
  }
  const size = pk.size;
  if (typeof size !== 'number') return;
  if (alg === 'RSA' && ![2048, 3072, 4096].includes(size)) {
    ctx.addIssue({ code: 'custom', path: ['privateKey', 'size'], message: `RSA key size must be 2048, 3072 or 4096, got ${size}` });
  }
  if (alg === 'ECDSA' && ![256, 384].includes(size)) {
    ctx.addIssue({ code: 'custom', path: ['privateKey', 'size'], message: `ECDSA key size must be 256 or 384, got ${size}` });
  }
}

export interface CertificateStatus {
  conditions?: Condition[];
  notBefore?: string;
  notAfter?: string;
  renewalTime?: string;
  revision?: number;
  lastFailureTime?: string;
  failedIssuanceAttempts?: number;
  /** The serial of the certificate in the secret (meshca addition, handy for audits and tests). */
  serialNumber?: string;
}
export type Certificate = Resource<CertificateSpec, CertificateStatus>;

/** A CertificateRequest: created by the certificates controller for each issuance, or applied directly. */
export const CertificateRequestSpecSchema = z
  .strictObject({
    request: z.string().min(1, 'must hold the base64-encoded PEM CSR'),
    issuerRef: IssuerRefSchema,
    duration: goDuration.optional(),
    isCA: z.boolean().optional(),
    usages: z.array(z.string()).optional(),
    // Set by the API server in Kubernetes; accepted so that exported objects re-apply.
    username: z.string().optional(),
    uid: z.string().optional(),
    groups: z.array(z.string()).optional(),
    extra: z.record(z.string(), z.array(z.string())).optional(),
  })
  .superRefine((raw, ctx) => {
    const s = obj(raw);
    if (!s) return;
    const request = str(s.request);
    if (request !== undefined && !Buffer.from(request, 'base64').toString('utf8').includes('-----BEGIN CERTIFICATE REQUEST-----')) {
      ctx.addIssue({ code: 'custom', path: ['request'], message: 'must be the base64 encoding of a PEM "CERTIFICATE REQUEST"' });
    }
    const durationText = str(s.duration);
    const d = durationText !== undefined ? parseGoDuration(durationText) : undefined;
    if (d !== undefined && d < MIN_DURATION_MS)
      ctx.addIssue({ code: 'custom', path: ['duration'], message: `duration ${durationText} must be at least 1h0m0s` });
    checkUsages(strs(s.usages), ctx);
    const ref = obj(s.issuerRef);
    if (str(ref?.name)) checkIssuerRef({ name: str(ref!.name)!, kind: str(ref!.kind), group: str(ref!.group) }, ctx, ['issuerRef']);
  }, ALWAYS);
export type CertificateRequestSpec = z.infer<typeof CertificateRequestSpecSchema>;

export interface CertificateRequestStatus {
  conditions?: Condition[];
  /** base64 PEM: the issued certificate followed by intermediates (cert-manager's layout). */
  certificate?: string;
  /** base64 PEM: the CA at the top of the chain. */
  ca?: string;
  failureTime?: string;
}
export type CertificateRequest = Resource<CertificateRequestSpec, CertificateRequestStatus>;

export const IssuerSpecSchema = z
  .strictObject({
    selfSigned: z.strictObject({ crlDistributionPoints: z.array(z.string()).optional() }).optional(),
    ca: z
      .strictObject({
        secretName: objectName,
        crlDistributionPoints: z.array(z.string()).optional(),
        ocspServers: z.array(z.string()).optional(),
        issuingCertificateURLs: z.array(z.string()).optional(),
      })
      .optional(),
    /** meshca's own hierarchy: the state directory's root, or a cluster's intermediate. */
    meshca: z.strictObject({ cluster: z.string().optional() }).optional(),
  })
  .superRefine((raw, ctx) => {
    const s = obj(raw);
    if (!s) return;
    const set = ['selfSigned', 'ca', 'meshca'].filter((k) => s[k] !== undefined);
    if (set.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message:
          set.length === 0
            ? 'exactly one issuer type must be set: selfSigned, ca or meshca'
            : `only one issuer type may be set, got ${set.join(' and ')}`,
      });
    }
  });
export type IssuerSpec = z.infer<typeof IssuerSpecSchema>;

/** Issuer types of cert-manager that meshca does not implement: refused by name. */
export const UNSUPPORTED_ISSUER_TYPES = ['acme', 'vault', 'venafi'];

export interface IssuerStatus {
  conditions?: Condition[];
}
export type Issuer = Resource<IssuerSpec, IssuerStatus>;

const SecretKeySelector = z.strictObject({ name: z.string().optional(), key: z.string().min(1) });

export const AwsPcaIssuerSpecSchema = z.strictObject({
  arn: z
    .string()
    .regex(
      /^arn:[^:]+:acm-pca:[^:]*:[^:]*:certificate-authority\/.+$/,
      'must be an ACM PCA certificate-authority ARN (arn:aws:acm-pca:REGION:ACCOUNT:certificate-authority/ID)',
    ),
  region: z.string().min(1).optional(),
  secretRef: z
    .strictObject({
      name: objectName,
      namespace: z.string().optional(),
      accessKeyIDSelector: SecretKeySelector.optional(),
      secretAccessKeySelector: SecretKeySelector.optional(),
    })
    .optional(),
  role: z.string().optional(),
});
export type AwsPcaIssuerSpec = z.infer<typeof AwsPcaIssuerSpecSchema>;
export type AwsPcaIssuer = Resource<AwsPcaIssuerSpec, IssuerStatus>;

/** Effective renewBefore/duration of a Certificate spec, cert-manager's defaults applied. */
export function certificateDurationMs(spec: CertificateSpec): number {
  return spec.duration !== undefined ? parseGoDuration(spec.duration)! : DEFAULT_DURATION_MS;
}
