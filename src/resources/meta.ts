import { z } from 'zod';

/** RFC 1123 subdomain, as Kubernetes requires for most object names. */
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** RFC 1123 label, as Kubernetes requires for namespaces. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export const objectName = z.string().max(253).regex(DNS_SUBDOMAIN, 'must be a lowercase RFC 1123 subdomain (letters, digits, "-" and ".")');
export const namespaceName = z.string().regex(DNS_LABEL, 'must be a lowercase RFC 1123 label (letters, digits and "-", at most 63)');

const stringMap = z.record(z.string(), z.string());

/**
 * Object metadata. Server-set fields are accepted and ignored so that the output of
 * `meshca get KIND NAME -o yaml` can be applied again unchanged.
 */
export const ObjectMetaSchema = z.strictObject({
  name: objectName,
  namespace: namespaceName.optional(),
  labels: stringMap.optional(),
  annotations: stringMap.optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().optional(),
  creationTimestamp: z.string().nullable().optional(),
  managedFields: z.array(z.unknown()).optional(),
  ownerReferences: z.array(z.unknown()).optional(),
  finalizers: z.array(z.string()).optional(),
});
export type ObjectMetaInput = z.infer<typeof ObjectMetaSchema>;

/** Metadata as stored: server fields always present. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid: string;
  resourceVersion: string;
  generation: number;
  creationTimestamp: string;
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** A status condition as cert-manager writes them: a reason an operator can grep and a message to act on. */
export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** Every stored object. `status` belongs to controllers; apply never touches it. */
export interface Resource<Spec = unknown, Status = unknown> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

/** What `apply` hands to the store: metadata without the server fields. */
export interface ResourceInput<Spec = unknown> {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Spec;
}

export function getCondition(conditions: Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/**
 * Sets a condition, keeping lastTransitionTime when the status does not change (Kubernetes
 * convention), so that a pass that learns nothing new writes nothing new.
 */
export function setCondition(
  conditions: Condition[] | undefined,
  c: { type: string; status: ConditionStatus; reason: string; message: string; observedGeneration?: number },
  now: Date,
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((x) => x.type === c.type);
  const prev = i >= 0 ? list[i] : undefined;
  const next: Condition = {
    type: c.type,
    status: c.status,
    reason: c.reason,
    message: c.message,
    lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : now.toISOString(),
    ...(c.observedGeneration !== undefined ? { observedGeneration: c.observedGeneration } : {}),
  };
  if (i >= 0) list[i] = next;
  else list.push(next);
  return list;
}

export function removeCondition(conditions: Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

export function isTrue(conditions: Condition[] | undefined, type: string): boolean {
  return getCondition(conditions, type)?.status === 'True';
}

/** "istio-system/istio-ca" or "name" for cluster-scoped objects. */
export function objectKey(meta: { name: string; namespace?: string }): string {
  return meta.namespace ? `${meta.namespace}/${meta.name}` : meta.name;
}
