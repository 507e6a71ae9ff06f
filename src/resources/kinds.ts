import type { z } from 'zod';
import {
  AWSPCA_GROUP,
  AwsPcaIssuerSpecSchema,
  CERT_MANAGER_GROUP,
  CertificateRequestSpecSchema,
  CertificateSpecSchema,
  IssuerSpecSchema,
  UNSUPPORTED_CERTIFICATE_FIELDS,
  UNSUPPORTED_ISSUER_TYPES,
} from './certmanager.js';
import { GLOO_ADMIN_GROUP, RootTrustPolicySpecSchema } from './gloo.js';
import { ApprovalPolicySpecSchema, ClusterSpecSchema, MESHCA_GROUP, RootRotationSpecSchema } from './meshca.js';
import { invalid } from '../pki/errors.js';

/** Everything meshca knows about one kind: how it is addressed, validated and stored. */
export interface KindInfo {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  namespaced: boolean;
  /** Validates `spec`; absent for Secret, which has no spec and lives in the secret sink. */
  spec?: z.ZodType;
  /** Spec fields that belong to the upstream API but that meshca does not implement, with why. */
  unsupported?: Record<string, string>;
}

export function apiVersionOf(k: KindInfo): string {
  return k.group ? `${k.group}/${k.version}` : k.version;
}

/** kubectl's way of naming a kind in messages: certificate.cert-manager.io */
export function qualifiedName(k: KindInfo): string {
  return k.group ? `${k.singular}.${k.group}` : k.singular;
}

const unsupportedCertFields = Object.fromEntries(
  UNSUPPORTED_CERTIFICATE_FIELDS.map((f) => [f, `the cert-manager field "${f}" is not supported by meshca`]),
);
const unsupportedIssuerTypes = Object.fromEntries(
  UNSUPPORTED_ISSUER_TYPES.map((f) => [f, `the cert-manager issuer type "${f}" is not supported by meshca; use selfSigned, ca or meshca`]),
);

export const KINDS: KindInfo[] = [
  {
    group: CERT_MANAGER_GROUP,
    version: 'v1',
    kind: 'Certificate',
    plural: 'certificates',
    singular: 'certificate',
    shortNames: ['cert', 'certs'],
    namespaced: true,
    spec: CertificateSpecSchema,
    unsupported: unsupportedCertFields,
  },
  {
    group: CERT_MANAGER_GROUP,
    version: 'v1',
    kind: 'CertificateRequest',
    plural: 'certificaterequests',
    singular: 'certificaterequest',
    shortNames: ['cr', 'crs'],
    namespaced: true,
    spec: CertificateRequestSpecSchema,
  },
  {
    group: CERT_MANAGER_GROUP,
    version: 'v1',
    kind: 'Issuer',
    plural: 'issuers',
    singular: 'issuer',
    shortNames: [],
    namespaced: true,
    spec: IssuerSpecSchema,
    unsupported: unsupportedIssuerTypes,
  },
  {
    group: CERT_MANAGER_GROUP,
    version: 'v1',
    kind: 'ClusterIssuer',
    plural: 'clusterissuers',
    singular: 'clusterissuer',
    shortNames: [],
    namespaced: false,
    spec: IssuerSpecSchema,
    unsupported: unsupportedIssuerTypes,
  },
  {
    group: AWSPCA_GROUP,
    version: 'v1beta1',
    kind: 'AWSPCAIssuer',
    plural: 'awspcaissuers',
    singular: 'awspcaissuer',
    shortNames: [],
    namespaced: true,
    spec: AwsPcaIssuerSpecSchema,
  },
  {
    group: AWSPCA_GROUP,
    version: 'v1beta1',
    kind: 'AWSPCAClusterIssuer',
    plural: 'awspcaclusterissuers',
    singular: 'awspcaclusterissuer',
    shortNames: [],
    namespaced: false,
    spec: AwsPcaIssuerSpecSchema,
  },
  {
    group: GLOO_ADMIN_GROUP,
    version: 'v2',
    kind: 'RootTrustPolicy',
    plural: 'roottrustpolicies',
    singular: 'roottrustpolicy',
    shortNames: ['rtp'],
    namespaced: true,
    spec: RootTrustPolicySpecSchema,
  },
  {
    group: MESHCA_GROUP,
    version: 'v1alpha1',
    kind: 'Cluster',
    plural: 'clusters',
    singular: 'cluster',
    shortNames: [],
    namespaced: false,
    spec: ClusterSpecSchema,
  },
  {
    group: MESHCA_GROUP,
    version: 'v1alpha1',
    kind: 'ApprovalPolicy',
    plural: 'approvalpolicies',
    singular: 'approvalpolicy',
    shortNames: [],
    namespaced: false,
    spec: ApprovalPolicySpecSchema,
  },
  {
    group: MESHCA_GROUP,
    version: 'v1alpha1',
    kind: 'RootRotation',
    plural: 'rootrotations',
    singular: 'rootrotation',
    shortNames: ['rr'],
    namespaced: false,
    spec: RootRotationSpecSchema,
  },
  { group: '', version: 'v1', kind: 'Secret', plural: 'secrets', singular: 'secret', shortNames: [], namespaced: true },
];

export function kindByName(kind: string): KindInfo {
  const k = KINDS.find((x) => x.kind === kind);
  if (!k) throw new Error(`internal: kind ${kind} is not registered`);
  return k;
}

export const CERTIFICATE = kindByName('Certificate');
export const CERTIFICATE_REQUEST = kindByName('CertificateRequest');
export const ISSUER = kindByName('Issuer');
export const CLUSTER_ISSUER = kindByName('ClusterIssuer');
export const AWSPCA_ISSUER = kindByName('AWSPCAIssuer');
export const AWSPCA_CLUSTER_ISSUER = kindByName('AWSPCAClusterIssuer');
export const ROOT_TRUST_POLICY = kindByName('RootTrustPolicy');
export const CLUSTER = kindByName('Cluster');
export const APPROVAL_POLICY = kindByName('ApprovalPolicy');
export const ROOT_ROTATION = kindByName('RootRotation');
export const SECRET = kindByName('Secret');

/** Resolves `apiVersion` + `kind` from a manifest; the message says what is served instead. */
export function kindFor(apiVersion: string, kind: string): { info?: KindInfo; problem?: string } {
  const byKind = KINDS.filter((k) => k.kind === kind);
  if (byKind.length === 0) {
    return { problem: `unknown kind "${kind}"; meshca accepts ${KINDS.map((k) => k.kind).join(', ')}` };
  }
  const exact = byKind.find((k) => apiVersionOf(k) === apiVersion);
  if (exact) return { info: exact };
  return { problem: `kind ${kind} is not served at apiVersion "${apiVersion}"; use ${byKind.map(apiVersionOf).join(' or ')}` };
}

/** Resolves what a user types after `meshca get`: plural, singular, short name, Kind, or kind.group. */
export function kindFromCli(name: string): KindInfo {
  const n = name.toLowerCase();
  const [head, ...rest] = n.split('.');
  const group = rest.join('.');
  const found = KINDS.find(
    (k) =>
      (!group || k.group === group) &&
      (k.plural === head || k.singular === head || k.shortNames.includes(head) || k.kind.toLowerCase() === head),
  );
  if (!found) {
    throw invalid('unknown_kind', `the server doesn't have a resource type "${name}"; known: ${KINDS.map((k) => k.plural).join(', ')}`);
  }
  return found;
}
