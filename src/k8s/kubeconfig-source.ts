import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { MeshcaError } from '../pki/errors.js';

const SA_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * Which kubeconfig a command without --kubeconfig uses, in the client library's order ($KUBECONFIG,
 * ~/.kube/config, the pod's service account), for messages. Refuses when there is none: the
 * library would otherwise fall back to http://localhost:8080 and the caller retry forever.
 */
export function defaultKubeconfigLabel(env: NodeJS.ProcessEnv = process.env, inPod = () => existsSync(SA_TOKEN)): string {
  const fromEnv = env.KUBECONFIG?.split(delimiter).filter(Boolean) ?? [];
  if (fromEnv.length > 0) return `${fromEnv.join(delimiter)} (from $KUBECONFIG)`;
  const home = env.HOME ? join(env.HOME, '.kube', 'config') : undefined;
  if (home && existsSync(home)) return home;
  if (inPod()) return 'in-cluster (the pod service account)';
  throw new MeshcaError(
    'invalid_argument',
    'no_kubeconfig',
    `no kubeconfig found: --kubeconfig not given, $KUBECONFIG not set, ${home ?? '~/.kube/config ($HOME not set)'} does not exist, ` +
      `and not in a pod (${SA_TOKEN} missing); pass --kubeconfig FILE`,
  );
}
