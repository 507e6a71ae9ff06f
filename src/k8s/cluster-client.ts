import { isAbsolute, resolve } from 'node:path';
import { MeshcaError } from '../pki/errors.js';
import type { ClusterKubeconfig } from '../resources/meshca.js';
import type { SecretRef, StoredSecret } from '../resources/secrets.js';
import { KubeClient } from './client.js';

/** The key a kubeconfig Secret holds it under when secretRef names none. */
export const KUBECONFIG_KEY = 'kubeconfig';
/** The namespace of a secretRef that names none: where `meshca apply` puts a Secret without one. */
export const KUBECONFIG_SECRET_NAMESPACE = 'default';

export function kubeconfigSecretRef(k: ClusterKubeconfig): (SecretRef & { key: string }) | undefined {
  const r = k.secretRef;
  return r && { namespace: r.namespace ?? KUBECONFIG_SECRET_NAMESPACE, name: r.name, key: r.key ?? KUBECONFIG_KEY };
}

/** A kubeconfig file path made absolute, so that the stored reference does not depend on the caller's directory. */
export function absoluteKubeconfig(k: ClusterKubeconfig, cwd = process.cwd()): ClusterKubeconfig {
  return k.file && !isAbsolute(k.file) ? { ...k, file: resolve(cwd, k.file) } : k;
}

/**
 * The client for one registered cluster, from its Cluster's kubeconfig reference: a file, or a
 * key of a Secret in meshca's state (read with `getSecret`). Errors name the reference and the
 * problem, never the credentials.
 */
export async function clusterClient(
  cluster: string,
  k: ClusterKubeconfig,
  getSecret: (ref: SecretRef) => Promise<StoredSecret | undefined>,
): Promise<KubeClient> {
  const ref = kubeconfigSecretRef(k);
  if (!ref) return KubeClient.load({ kubeconfig: k.file, context: k.context });
  const label = `secret ${ref.namespace}/${ref.name} key ${ref.key}`;
  const s = await getSecret(ref);
  if (!s)
    throw new MeshcaError(
      'not_found',
      'kubeconfig_secret_missing',
      `cluster ${cluster}: kubeconfig secret ${ref.namespace}/${ref.name} not found; apply it before the Cluster`,
    );
  const data = s.data[ref.key];
  if (!data)
    throw new MeshcaError(
      'invalid_argument',
      'kubeconfig_key_missing',
      `cluster ${cluster}: secret ${ref.namespace}/${ref.name} has no key "${ref.key}" (keys: ${Object.keys(s.data).join(', ') || 'none'})`,
    );
  return KubeClient.load({ kubeconfigText: { text: data.toString('utf8'), label }, context: k.context });
}

/**
 * Checks a Cluster's kubeconfig reference before it is stored (readable, valid, the context
 * exists); returns it with an absolute file path. The API server is not contacted: a cluster may
 * be registered before it is reachable, and delivery reports that on its status.
 */
export async function checkedKubeconfig(
  cluster: string,
  k: ClusterKubeconfig,
  getSecret: (ref: SecretRef) => Promise<StoredSecret | undefined>,
): Promise<ClusterKubeconfig> {
  const abs = absoluteKubeconfig(k);
  await clusterClient(cluster, abs, getSecret);
  return abs;
}
