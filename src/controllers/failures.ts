import { CERTIFICATE_REQUEST, CLUSTER, KINDS, SECRET, type KindInfo } from '../resources/kinds.js';
import { objectKey, type Condition, type Resource } from '../resources/meta.js';
import type { ResourceStore } from '../resources/store.js';
import { ANNOTATIONS } from './certificates/policy.js';
import { ISSUER_KIND_INFOS } from './issuers/index.js';

/** A resource whose status says its last reconcile failed: what a one-shot command must not exit 0 on. */
export interface FailedResource {
  /** "Certificate istio-system/istio-ca", as in reconcile events. */
  object: string;
  reason: string;
  message: string;
}

/**
 * Condition reasons the controllers write when something failed, as opposed to "not yet" (Pending,
 * DoesNotExist, Renewing, NoClusters): a failed issuance in backoff, a final request failure or
 * denial, a Secret owned by someone else, a policy whose CA or clusters fail, an undelivered bundle.
 */
const FAILURE_REASONS = new Set(['Failed', 'Denied', 'SecretNotOwned', 'CAUnavailable', 'ClustersFailing', 'DeliveryFailed']);

function failedCondition(kind: KindInfo, conditions: Condition[]): Condition | undefined {
  // An issuer is either verified or not: any Ready=False means nothing it signs can be issued.
  if (ISSUER_KIND_INFOS.includes(kind)) return conditions.find((c) => c.type === 'Ready' && c.status === 'False');
  return conditions.find((c) => c.status === 'False' && FAILURE_REASONS.has(c.reason));
}

/** Every stored resource whose status records a failure, in kind order then namespace/name. */
export async function failedResources(store: ResourceStore): Promise<FailedResource[]> {
  const out: FailedResource[] = [];
  for (const kind of KINDS) {
    if (kind === SECRET) continue;
    for (const r of await store.list<Resource<unknown, { conditions?: Condition[] }>>(kind)) {
      // A Certificate's own requests: their failure is reported on the Certificate, and old ones stay behind.
      if (kind === CERTIFICATE_REQUEST && r.metadata.annotations?.[ANNOTATIONS.certificateName]) continue;
      const c = failedCondition(kind, r.status?.conditions ?? []);
      if (!c) continue;
      const name = kind === CLUSTER ? r.metadata.name : objectKey(r.metadata);
      out.push({ object: `${kind.kind} ${name}`, reason: c.reason, message: c.message });
    }
  }
  return out;
}
