import { readFileSync } from 'node:fs';
import type * as k8s from '@kubernetes/client-node';
import { MeshcaError, errorMessage } from '../pki/errors.js';
import { defaultKubeconfigLabel } from './kubeconfig-source.js';

export interface KubeClientOptions {
  /** A kubeconfig path, "in-cluster" for the pod's service account, or undefined for $KUBECONFIG / ~/.kube/config (or in-cluster in a pod). */
  kubeconfig?: string;
  /** A kubeconfig's text (from a Secret); `label` names it in errors. Takes precedence over `kubeconfig`. */
  kubeconfigText?: { text: string; label: string };
  context?: string;
}

/**
 * The first line of a kubeconfig loading error: YAML parsers quote the offending lines after it,
 * and those lines may hold a token or a key.
 */
function firstLine(e: unknown): string {
  return errorMessage(e).split('\n')[0].trim();
}

/** One watch event as the API server streams it. */
export interface KubeWatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

const SA_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/**
 * The Kubernetes APIs meshca calls, on @kubernetes/client-node (1.x loads on Node 20): kubeconfig
 * handling (tokens, client certificates, exec plugins, in-cluster) comes from the library, so
 * meshca never re-implements it. Loaded on first use: processes that never talk to Kubernetes
 * never import it.
 */
export class KubeClient {
  private constructor(
    readonly kc: k8s.KubeConfig,
    readonly certificates: k8s.CertificatesV1Api,
    readonly core: k8s.CoreV1Api,
    readonly coordination: k8s.CoordinationV1Api,
    readonly authentication: k8s.AuthenticationV1Api,
    private readonly watcher: k8s.Watch,
    private readonly MicroTime: typeof k8s.V1MicroTime,
    /** The namespace of the current context (or of the pod), for namespaced objects meshca owns. */
    readonly namespace: string,
  ) {}

  static async load(o: KubeClientOptions = {}): Promise<KubeClient> {
    const lib = await import('@kubernetes/client-node');
    const kc = new lib.KubeConfig();
    const where = o.kubeconfigText?.label ?? o.kubeconfig ?? defaultKubeconfigLabel();
    try {
      if (o.kubeconfigText) kc.loadFromString(o.kubeconfigText.text);
      else if (o.kubeconfig === 'in-cluster') kc.loadFromCluster();
      else if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
      else kc.loadFromDefault();
      if (o.context) {
        if (!kc.getContextObject(o.context)) {
          const known = kc.getContexts().map((c) => c.name);
          throw new Error(`context "${o.context}" not found (contexts: ${known.join(', ') || 'none'})`);
        }
        kc.setCurrentContext(o.context);
      }
      if (!kc.getCurrentCluster()) throw new Error('no current cluster');
    } catch (e) {
      throw new MeshcaError('invalid_argument', 'bad_kubeconfig', `kubeconfig ${where} cannot be used: ${firstLine(e)}`);
    }
    let namespace = kc.getContextObject(kc.getCurrentContext())?.namespace;
    if (!namespace && o.kubeconfig === 'in-cluster') {
      try {
        namespace = readFileSync(SA_NAMESPACE, 'utf8').trim();
      } catch {
        /* not in a pod after all */
      }
    }
    return new KubeClient(
      kc,
      kc.makeApiClient(lib.CertificatesV1Api),
      kc.makeApiClient(lib.CoreV1Api),
      kc.makeApiClient(lib.CoordinationV1Api),
      kc.makeApiClient(lib.AuthenticationV1Api),
      new lib.Watch(kc),
      lib.V1MicroTime,
      namespace || 'default',
    );
  }

  /**
   * A Lease's renewTime and acquireTime are MicroTime: the API server refuses millisecond
   * precision, and client-node's V1MicroTime serializes with six fractional digits.
   */
  microTime(d: Date): Date {
    return new this.MicroTime(d.getTime());
  }

  get server(): string {
    return this.kc.getCurrentCluster()?.server ?? '';
  }

  /**
   * One watch request: calls onEvent for each event until the server ends the stream (resolves)
   * or the connection fails (rejects). Aborting the signal ends it and resolves.
   */
  async watch<T>(
    path: string,
    params: Record<string, string | number | boolean | undefined>,
    onEvent: (e: KubeWatchEvent<T>) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    if (signal?.aborted) return;
    let controller: AbortController | undefined;
    let settle: (() => void) | undefined;
    const ended = new Promise<void>((resolve, reject) => {
      settle = resolve;
      this.watcher
        .watch(
          path,
          params,
          (type, object) => {
            try {
              onEvent({ type: type as KubeWatchEvent<T>['type'], object: object as T });
            } catch (e) {
              controller?.abort();
              reject(e);
            }
          },
          (err) => (err && !signal?.aborted && (err as { name?: string }).name !== 'AbortError' ? reject(err) : resolve()),
        )
        .then((c) => {
          controller = c;
          if (signal?.aborted) c.abort();
        }, reject);
    });
    // client-node hands out the request's controller only once response headers arrive; an abort
    // before that settles here, and the request is aborted as soon as its controller exists.
    const onAbort = () => {
      controller?.abort();
      settle?.();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await ended;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

/** The HTTP status of a failed API call (client-node's ApiException), or undefined for a transport failure. */
export function apiStatus(e: unknown): number | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** The API server's own message from a Status body, falling back to the error text. */
export function apiMessage(e: unknown): string {
  const body = (e as { body?: unknown } | null)?.body;
  if (typeof body === 'string') {
    try {
      const s = JSON.parse(body) as { message?: string };
      if (s.message) return s.message;
    } catch {
      /* not JSON */
    }
  } else if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') {
    return (body as { message: string }).message;
  }
  return errorMessage(e);
}

/** Maps a failed call to meshca's error codes, naming what was being done. */
export function kubeError(what: string, e: unknown): MeshcaError {
  if (e instanceof MeshcaError) return e;
  const code = apiStatus(e);
  const msg = `${what}: ${code ? `HTTP ${code}: ` : ''}${apiMessage(e)}`;
  switch (code) {
    case 400:
    case 422:
      return new MeshcaError('invalid_argument', 'kube_invalid', msg, { cause: e });
    case 401:
      return new MeshcaError('unavailable', 'kube_unauthorized', msg, { cause: e });
    case 403:
      return new MeshcaError('permission_denied', 'kube_forbidden', msg, { cause: e });
    case 404:
      return new MeshcaError('not_found', 'kube_not_found', msg, { cause: e });
    case 409:
      return new MeshcaError('already_exists', 'kube_conflict', msg, { cause: e });
    default:
      return new MeshcaError('unavailable', 'kube_api', msg, { cause: e });
  }
}
