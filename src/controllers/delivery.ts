import type { ParsedCertificate } from '../pki/certificate.js';
import { errorMessage } from '../pki/errors.js';
import { clusterClient } from '../k8s/cluster-client.js';
import { writeCacerts } from '../k8s/cluster-delivery.js';
import { cacertsContent } from '../k8s/istio-publisher.js';
import { CACERTS } from '../resources/file-secrets.js';
import { CLUSTER } from '../resources/kinds.js';
import type { Cluster, ClusterDeliveryStatus } from '../resources/meshca.js';
import { setCondition } from '../resources/meta.js';
import { dataDigest, type StoredSecret } from '../resources/secrets.js';
import { deepEqual } from '../resources/store.js';
import { caFromSecret } from './ca-material.js';
import { withTimeout } from '../util/timeout.js';
import { guarded, record, wakeAt, type ControllerContext } from './context.js';

const RETRY_BASE_MS = 10_000;
const RETRY_MAX_MS = 5 * 60_000;
/** An API server that drops packets would otherwise hold the whole pass (and every renewal in it) for minutes. */
const DELIVERY_TIMEOUT_MS = 30_000;

/** What a cluster's API server should hold: the local bundle in Istio's and cert-manager's layouts. */
export interface WantedBundle {
  data: Record<string, Buffer>;
  digest: string;
  cert: ParsedCertificate;
}

export function wantedBundle(cluster: string, local: StoredSecret): WantedBundle {
  const ca = caFromSecret(local, `cluster ${cluster} cacerts`);
  const { data } = cacertsContent({ signer: { cert: ca.cert, key: ca.key, chain: ca.above }, roots: ca.roots });
  return { data, digest: dataDigest(data), cert: ca.cert };
}

function label(c: Cluster): string {
  return `Cluster ${c.metadata.name}`;
}

function iso(d: Date): string {
  return d.toISOString().replace('.000Z', 'Z');
}

/** Delay before retrying a cluster that failed `attempts` times in a row. */
export function deliveryRetryMs(attempts: number): number {
  return Math.min(RETRY_BASE_MS * 2 ** Math.max(0, attempts - 1), RETRY_MAX_MS);
}

async function localBundle(ctx: ControllerContext, cluster: string): Promise<StoredSecret | undefined> {
  return ctx.secrets.get({ cluster, ...CACERTS });
}

/**
 * Pushes one cluster's bundle to its API server and records the outcome in the Cluster's status
 * (digest, expiry, last write, last error), so that `meshca get clusters` shows it after a restart.
 */
async function deliver(ctx: ControllerContext, cl: Cluster): Promise<void> {
  const name = cl.metadata.name;
  const local = await localBundle(ctx, name);
  if (!local) return;
  const prev: ClusterDeliveryStatus = cl.status?.delivery ?? {};
  const next: ClusterDeliveryStatus = { ...prev };
  let ok: boolean;
  try {
    const want = wantedBundle(name, local);
    if (ctx.dryRun) {
      if (prev.digest !== want.digest)
        record(ctx, { object: label(cl), action: 'would-deliver', message: `istio-system/cacerts bundle ${want.digest.slice(0, 12)}` });
      return;
    }
    const client = await clusterClient(name, cl.spec.kubeconfig!, (r) => ctx.secrets.get(r));
    next.server = client.server;
    const { outcome } = await withTimeout(
      writeCacerts(client, want.data, { cluster: name, adopt: cl.spec.adoptExisting }),
      DELIVERY_TIMEOUT_MS,
      `cluster ${name} (${client.server}): no answer from the API server within ${DELIVERY_TIMEOUT_MS / 1000} s`,
    );
    if (outcome !== 'unchanged') {
      next.lastWriteTime = iso(ctx.now);
      record(ctx, {
        object: label(cl),
        action: 'delivered',
        message: `${outcome} istio-system/cacerts on ${client.server}: bundle ${want.digest.slice(0, 12)}, intermediate serial ${want.cert.serialHex}`,
      });
    }
    Object.assign(next, { digest: want.digest, serialNumber: want.cert.serialHex, notAfter: iso(want.cert.notAfter) });
    delete next.lastError;
    delete next.lastErrorTime;
    delete next.failedAttempts;
    ok = true;
  } catch (e) {
    const message = errorMessage(e);
    record(ctx, { object: label(cl), action: 'delivery-failed', message, warning: true });
    // The same failure again is not a change: a cluster that stays down does not rewrite status every pass.
    if (prev.lastError !== message) {
      next.lastError = message;
      next.lastErrorTime = iso(ctx.now);
      next.failedAttempts = (prev.failedAttempts ?? 0) + 1;
    }
    wakeAt(ctx, new Date(ctx.now.getTime() + deliveryRetryMs(next.failedAttempts ?? 1)));
    ok = false;
  }
  const conditions = setCondition(
    cl.status?.conditions,
    ok
      ? {
          type: 'Delivered',
          status: 'True',
          reason: 'Delivered',
          message: `istio-system/cacerts holds bundle ${next.digest!.slice(0, 12)}`,
        }
      : { type: 'Delivered', status: 'False', reason: 'DeliveryFailed', message: next.lastError! },
    ctx.now,
  );
  const status = { ...(cl.status ?? {}), conditions, delivery: next };
  if (deepEqual(status, cl.status ?? {})) return;
  const saved = await ctx.store.updateStatus(CLUSTER, { ...cl, status });
  if (saved.metadata.resourceVersion !== cl.metadata.resourceVersion) ctx.changed = true;
}

/** Writes every registered cluster's bundle to its API server (clusters with a kubeconfig only). */
export async function reconcileClusterDeliveries(ctx: ControllerContext): Promise<void> {
  for (const cl of await ctx.store.list<Cluster>(CLUSTER)) {
    if (cl.spec.kubeconfig) await guarded(ctx, label(cl), () => deliver(ctx, cl));
  }
}

/**
 * Clusters with a kubeconfig whose API server does not yet hold their current local bundle, with
 * the last delivery error if any: a root rotation does not leave a phase until this is empty.
 */
export async function pendingDeliveries(ctx: ControllerContext): Promise<{ cluster: string; error?: string }[]> {
  const out = [];
  for (const cl of await ctx.store.list<Cluster>(CLUSTER)) {
    if (!cl.spec.kubeconfig) continue;
    const local = await localBundle(ctx, cl.metadata.name);
    let digest: string | undefined;
    try {
      digest = local && wantedBundle(cl.metadata.name, local).digest;
    } catch {
      digest = undefined;
    }
    const d = cl.status?.delivery;
    if (!digest || d?.digest !== digest) out.push({ cluster: cl.metadata.name, error: d?.lastError });
  }
  return out;
}
