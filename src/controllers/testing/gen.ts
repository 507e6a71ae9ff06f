import type { CertificateSpec } from '../../resources/certmanager.js';
import type { ResourceInput } from '../../resources/meta.js';

/**
 * Fixture builders in cert-manager's style: `gen.certificate('istio-ca', withIsCA(), withDuration('720h'))`.
 * Each modifier edits the object in place; builders return plain ResourceInputs ready for `apply`.
 */
export type Mod = (o: ResourceInput<Record<string, unknown>>) => void;

function build(
  apiVersion: string,
  kind: string,
  name: string,
  spec: Record<string, unknown>,
  mods: Mod[],
  namespace?: string,
): ResourceInput<Record<string, unknown>> {
  const o: ResourceInput<Record<string, unknown>> = { apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) }, spec };
  for (const m of mods) m(o);
  return o;
}

const certSpec = (o: ResourceInput<Record<string, unknown>>) => o.spec as Partial<CertificateSpec> & Record<string, unknown>;

export const gen = {
  certificate: (name: string, ...mods: Mod[]) =>
    build(
      'cert-manager.io/v1',
      'Certificate',
      name,
      { secretName: name, commonName: name, issuerRef: { name: 'selfsigned', kind: 'Issuer' } },
      mods,
      'default',
    ),
  selfSignedIssuer: (name = 'selfsigned', ...mods: Mod[]) =>
    build('cert-manager.io/v1', 'Issuer', name, { selfSigned: {} }, mods, 'default'),
  caIssuer: (name: string, secretName: string, ...mods: Mod[]) =>
    build('cert-manager.io/v1', 'Issuer', name, { ca: { secretName } }, mods, 'default'),
  meshcaClusterIssuer: (name = 'meshca', cluster?: string, ...mods: Mod[]) =>
    build('cert-manager.io/v1', 'ClusterIssuer', name, { meshca: cluster ? { cluster } : {} }, mods),
  awsPcaIssuer: (name: string, arn: string, ...mods: Mod[]) =>
    build('awspca.cert-manager.io/v1beta1', 'AWSPCAIssuer', name, { arn, region: 'us-east-1' }, mods, 'default'),
  rootTrustPolicy: (name = 'root-trust-policy', ...mods: Mod[]) =>
    build(
      'admin.gloo.solo.io/v2',
      'RootTrustPolicy',
      name,
      { config: { mgmtServerCa: { generated: {} }, intermediateCertOptions: { rsaKeySizeBytes: 2048 } } },
      mods,
      'gloo-mesh',
    ),
  cluster: (name: string, ...mods: Mod[]) => build('meshca.io/v1alpha1', 'Cluster', name, {}, mods),
  approvalPolicy: (name: string, deny: Record<string, unknown>[]) => build('meshca.io/v1alpha1', 'ApprovalPolicy', name, { deny }, []),
};

export const withNamespace =
  (ns: string): Mod =>
  (o) => {
    o.metadata.namespace = ns;
  };
export const withIsCA = (): Mod => (o) => {
  certSpec(o).isCA = true;
};
export const withDuration =
  (d: string): Mod =>
  (o) => {
    certSpec(o).duration = d;
  };
export const withRenewBefore =
  (d: string): Mod =>
  (o) => {
    certSpec(o).renewBefore = d;
  };
export const withSecretName =
  (s: string): Mod =>
  (o) => {
    certSpec(o).secretName = s;
  };
export const withDNSNames =
  (...names: string[]): Mod =>
  (o) => {
    certSpec(o).dnsNames = names;
  };
export const withCommonName =
  (cn: string | undefined): Mod =>
  (o) => {
    if (cn === undefined) delete certSpec(o).commonName;
    else certSpec(o).commonName = cn;
  };
export const withIssuer =
  (name: string, kind = 'Issuer', group?: string): Mod =>
  (o) => {
    certSpec(o).issuerRef = { name, kind, ...(group ? { group } : {}) };
  };
export const withPrivateKey =
  (pk: Record<string, unknown>): Mod =>
  (o) => {
    certSpec(o).privateKey = pk as CertificateSpec['privateKey'];
  };
export const withSpec =
  (patch: Record<string, unknown>): Mod =>
  (o) => {
    Object.assign(o.spec, patch);
  };
