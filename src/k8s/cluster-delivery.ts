import type { V1Secret } from '@kubernetes/client-node';
import { MeshcaError } from '../pki/errors.js';
import { CACERTS } from '../resources/file-secrets.js';
import { dataDigest, MANAGED_BY_LABEL, OWNER_ANNOTATION } from '../resources/secrets.js';
import { apiStatus, kubeError, type KubeClient } from './client.js';

/** The owner annotation of a delivered cacerts: meshca replaces only Secrets that carry it (or adopted ones). */
export const DELIVERY_OWNER = 'meshca/cluster-delivery';
/** SHA-256 of the delivered data, so that anyone can tell which bundle a cluster holds. */
export const DIGEST_ANNOTATION = 'meshca.io/bundle-digest';

export type DeliveryOutcome = 'created' | 'updated' | 'unchanged';

export interface DeliveryOptions {
  /** Names the cluster in errors. */
  cluster: string;
  /** Replace a cacerts meshca did not create. */
  adopt?: boolean;
}

function decoded(s: V1Secret): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, 'base64');
  return out;
}

/**
 * Writes a cluster's istio-system/cacerts to its API server: created when absent, replaced (with
 * the resourceVersion read, so a concurrent change is a conflict) when meshca owns it or `adopt`
 * is set, left alone when it already holds exactly `data`. A Secret of another owner is an error
 * naming it. An adopted Secret keeps its type, so the replacement is in place: deleting it to
 * change the type would leave istiod without its CA for a moment.
 */
export async function writeCacerts(
  client: KubeClient,
  data: Record<string, Buffer>,
  o: DeliveryOptions,
): Promise<{ outcome: DeliveryOutcome; digest: string }> {
  const { namespace, name } = CACERTS;
  const where = `cluster ${o.cluster} (${client.server}): secret ${namespace}/${name}`;
  const digest = dataDigest(data);
  let current: V1Secret | undefined;
  try {
    current = await client.core.readNamespacedSecret({ name, namespace });
  } catch (e) {
    if (apiStatus(e) !== 404) throw kubeError(`reading ${where}`, e);
  }
  const annotations = current?.metadata?.annotations ?? {};
  const owner = annotations[OWNER_ANNOTATION];
  if (current && owner !== DELIVERY_OWNER && !o.adopt) {
    throw new MeshcaError(
      'failed_precondition',
      'secret_not_owned',
      `${where} exists and ${owner ? `is managed by ${owner}` : 'was not created by meshca'}; it is left alone (set spec.adoptExisting, or \`meshca cluster add ${o.cluster} --adopt-existing\`, to let meshca replace it)`,
    );
  }
  if (current && owner === DELIVERY_OWNER && annotations[DIGEST_ANNOTATION] === digest && dataDigest(decoded(current)) === digest) {
    return { outcome: 'unchanged', digest };
  }
  const b64: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) b64[k] = v.toString('base64');
  const body: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace,
      labels: { ...(current?.metadata?.labels ?? {}), [MANAGED_BY_LABEL]: 'meshca' },
      annotations: { ...annotations, [OWNER_ANNOTATION]: DELIVERY_OWNER, [DIGEST_ANNOTATION]: digest },
      ...(current?.metadata?.resourceVersion ? { resourceVersion: current.metadata.resourceVersion } : {}),
    },
    type: current?.type ?? 'Opaque',
    data: b64,
  };
  try {
    if (!current) await client.core.createNamespacedSecret({ namespace, body });
    else await client.core.replaceNamespacedSecret({ name, namespace, body });
  } catch (e) {
    if (apiStatus(e) === 409)
      throw new MeshcaError('unavailable', 'secret_conflict', `${where} changed while meshca was writing it; retrying at the next pass`);
    throw kubeError(`writing ${where}`, e);
  }
  return { outcome: current ? 'updated' : 'created', digest };
}
