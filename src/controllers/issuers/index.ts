import { MeshcaError } from '../../pki/errors.js';
import { normalizeIssuerRef, type AwsPcaIssuer, type Issuer, type IssuerRef } from '../../resources/certmanager.js';
import { AWSPCA_CLUSTER_ISSUER, AWSPCA_ISSUER, CLUSTER_ISSUER, ISSUER, qualifiedName, type KindInfo } from '../../resources/kinds.js';
import type { ResourceStore } from '../../resources/store.js';
import { awsCredentials, awsPcaBackend } from './awspca.js';
import { caBackend } from './ca.js';
import { meshcaBackend } from './meshca.js';
import { selfSignedBackend } from './selfsigned.js';
import { CLUSTER_RESOURCE_NAMESPACE, type IssuerBackend, type IssuerDeps } from './types.js';

export * from './types.js';
export { signFromTemplate, effectiveUsages } from './template.js';

export const ISSUER_KIND_INFOS: KindInfo[] = [ISSUER, CLUSTER_ISSUER, AWSPCA_ISSUER, AWSPCA_CLUSTER_ISSUER];

export interface FoundIssuer {
  kind: KindInfo;
  object: Issuer | AwsPcaIssuer;
}

/** Finds the object an issuerRef names, with cert-manager's not-found wording. */
export async function lookupIssuer(store: ResourceStore, ref: IssuerRef, namespace: string): Promise<FoundIssuer> {
  const r = normalizeIssuerRef(ref);
  const kind = ISSUER_KIND_INFOS.find((k) => k.kind === r.kind && k.group === r.group);
  if (!kind) throw new MeshcaError('not_found', 'issuer_not_found', `Referenced issuer kind "${r.kind}.${r.group}" is not known`);
  const object = await store.get<Issuer | AwsPcaIssuer>(kind, r.name, kind.namespaced ? namespace : undefined);
  if (!object) {
    throw new MeshcaError(
      'not_found',
      'issuer_not_found',
      `Referenced "${r.kind}" not found: ${qualifiedName(kind)} "${r.name}" not found`,
    );
  }
  return { kind, object };
}

/** The signing logic for one issuer object. */
export function backendFor(found: FoundIssuer, deps: IssuerDeps): IssuerBackend {
  const ns = found.kind.namespaced ? found.object.metadata.namespace! : CLUSTER_RESOURCE_NAMESPACE;
  if (found.kind === AWSPCA_ISSUER || found.kind === AWSPCA_CLUSTER_ISSUER) {
    const spec = (found.object as AwsPcaIssuer).spec;
    const issuerNs = found.kind.namespaced ? ns : undefined;
    return awsPcaBackend(spec, () => awsCredentials(deps.secrets, spec, issuerNs), deps.upstreams, deps.now);
  }
  const spec = (found.object as Issuer).spec;
  if (spec.selfSigned) return selfSignedBackend();
  if (spec.ca) return caBackend(deps.secrets, ns, spec.ca.secretName);
  if (spec.meshca) return meshcaBackend(deps.state, spec.meshca.cluster);
  throw new MeshcaError('invalid_argument', 'bad_issuer', `${found.kind.kind} ${found.object.metadata.name} sets no issuer type`);
}

export function issuerRefLabel(ref: IssuerRef): string {
  const r = normalizeIssuerRef(ref);
  return `${r.kind}.${r.group}/${r.name}`;
}
