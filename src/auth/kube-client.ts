import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { MeshcaError } from '../pki/errors.js';

/** The part of a TokenReview status meshca reads. */
export interface TokenReviewStatus {
  authenticated?: boolean;
  audiences?: string[];
  error?: string;
  user?: { username?: string };
}

export type ReviewFn = (token: string, audiences: string[]) => Promise<TokenReviewStatus | undefined>;

/**
 * @kubernetes/client-node 2.x depends on undici 8, which needs Node >= 22.19: on older Node even a
 * guarded dynamic import of it kills the process while loading. So the library is used where it
 * can load, and a minimal built-in client (kubeconfig token or client certificate, or the pod's
 * own service account) serves older Node.
 */
export function clientNodeUsable(version = process.versions.node): boolean {
  const [maj, min] = version.split('.').map(Number);
  return maj > 22 || (maj === 22 && min >= 19);
}

export async function tokenReviewClient(kubeconfig: string): Promise<{ review: ReviewFn; via: string }> {
  // In a pod, client-node (1.x, which loads on Node 20) is used whatever the Node version: it
  // re-reads the projected service-account token, which the kubelet rotates; the built-in client
  // reads it once. Elsewhere the built-in client keeps serving kubeconfigs that point at plain-HTTP
  // test servers, which client-node refuses without insecure-skip-tls-verify.
  if (clientNodeUsable() || kubeconfig === 'in-cluster')
    return { review: await clientNodeReview(kubeconfig), via: '@kubernetes/client-node' };
  return { review: builtinReview(loadKubeconfig(kubeconfig)), via: 'built-in client' };
}

async function clientNodeReview(kubeconfig: string): Promise<ReviewFn> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  try {
    if (kubeconfig === 'in-cluster') kc.loadFromCluster();
    else kc.loadFromFile(kubeconfig);
  } catch (e) {
    throw badKubeconfig(kubeconfig, e);
  }
  const api = kc.makeApiClient(k8s.AuthenticationV1Api);
  return async (token, audiences) => {
    const r = await api.createTokenReview({
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } },
    });
    return r.status;
  };
}

function badKubeconfig(path: string, e: unknown): MeshcaError {
  return new MeshcaError('invalid_argument', 'bad_kubeconfig', `kubeconfig ${path} cannot be used: ${(e as Error).message}`, { cause: e });
}

export interface ApiTarget {
  server: string;
  ca?: Buffer;
  insecure?: boolean;
  token?: string;
  cert?: Buffer;
  key?: Buffer;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Reads the current context's server and credentials (token, token file or client certificate). Exec plugins are not supported. */
export function loadKubeconfig(path: string): ApiTarget {
  try {
    if (path === 'in-cluster') {
      const host = process.env.KUBERNETES_SERVICE_HOST;
      if (!host) throw new Error('KUBERNETES_SERVICE_HOST is not set (not running in a pod)');
      const h = host.includes(':') ? `[${host}]` : host;
      return {
        server: `https://${h}:${process.env.KUBERNETES_SERVICE_PORT ?? '443'}`,
        ca: readFileSync(`${SA_DIR}/ca.crt`),
        token: readFileSync(`${SA_DIR}/token`, 'utf8').trim(),
      };
    }
    type Named<T> = { name: string } & T;
    const doc = parseYaml(readFileSync(path, 'utf8')) as {
      'current-context'?: string;
      contexts?: Named<{ context: { cluster: string; user: string } }>[];
      clusters?: Named<{ cluster: Record<string, string | boolean> }>[];
      users?: Named<{ user: Record<string, string> }>[];
    };
    const ctx = doc.contexts?.find((c) => c.name === doc['current-context']) ?? doc.contexts?.[0];
    if (!ctx) throw new Error('no context');
    const cluster = doc.clusters?.find((c) => c.name === ctx.context.cluster)?.cluster;
    if (!cluster || typeof cluster.server !== 'string') throw new Error(`context "${ctx.name}" names no cluster with a server`);
    const user = doc.users?.find((u) => u.name === ctx.context.user)?.user ?? {};
    if ('exec' in user || 'auth-provider' in user)
      throw new Error('exec and auth-provider credentials are not supported by the built-in client');
    const data = (inline: unknown, file: unknown): Buffer | undefined =>
      typeof inline === 'string' ? Buffer.from(inline, 'base64') : typeof file === 'string' ? readFileSync(file) : undefined;
    return {
      server: cluster.server,
      ca: data(cluster['certificate-authority-data'], cluster['certificate-authority']),
      insecure: cluster['insecure-skip-tls-verify'] === true,
      token: user.token ?? (user.tokenFile ? readFileSync(user.tokenFile, 'utf8').trim() : undefined),
      cert: data(user['client-certificate-data'], user['client-certificate']),
      key: data(user['client-key-data'], user['client-key']),
    };
  } catch (e) {
    throw badKubeconfig(path, e);
  }
}

export function builtinReview(t: ApiTarget): ReviewFn {
  const url = new URL('/apis/authentication.k8s.io/v1/tokenreviews', t.server);
  return (token, audiences) =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } });
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        accept: 'application/json',
        'content-length': String(Buffer.byteLength(body)),
      };
      if (t.token) headers.authorization = `Bearer ${t.token}`;
      const opts = { method: 'POST', headers, timeout: 5000 };
      const req =
        url.protocol === 'http:'
          ? httpRequest(url, opts)
          : httpsRequest(url, { ...opts, ca: t.ca, cert: t.cert, key: t.key, rejectUnauthorized: !t.insecure });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if ((res.statusCode ?? 0) >= 300) return reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
          try {
            resolve((JSON.parse(text) as { status?: TokenReviewStatus }).status);
          } catch (e) {
            reject(e);
          }
        });
      });
      req.end(body);
    });
}
