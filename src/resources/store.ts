import { MeshcaError } from '../pki/errors.js';
import type { KindInfo } from './kinds.js';
import type { Resource, ResourceInput } from './meta.js';

export type ApplyOutcome = 'created' | 'configured' | 'unchanged';

/**
 * Where declarative objects live. Deliberately as small as the slice of the Kubernetes API the
 * controllers use, so that a Kubernetes-backed store (CRDs, status subresource) can replace the
 * embedded one without touching controllers:
 *  - `apply` writes metadata and spec, never status, and bumps `generation` when spec changes;
 *  - `updateStatus` writes status only, guarded by `resourceVersion` (optimistic concurrency),
 *    and writes nothing when the status did not change.
 */
export interface ResourceStore {
  get<T extends Resource>(kind: KindInfo, name: string, namespace?: string): Promise<T | undefined>;
  /** Every object of a kind, in one namespace or all; sorted by namespace then name. */
  list<T extends Resource>(kind: KindInfo, namespace?: string): Promise<T[]>;
  apply<T extends Resource>(
    kind: KindInfo,
    input: ResourceInput,
    now: Date,
    ownerReferences?: Resource[],
  ): Promise<{ object: T; outcome: ApplyOutcome }>;
  updateStatus<T extends Resource>(kind: KindInfo, object: T): Promise<T>;
  delete(kind: KindInfo, name: string, namespace?: string): Promise<boolean>;
}

export function conflict(what: string): MeshcaError {
  return new MeshcaError('failed_precondition', 'conflict', `${what} was modified concurrently; retry`);
}

/** JSON with sorted keys: equal objects give equal text, whatever their key order. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return Object.fromEntries(
      Object.keys(o)
        .filter((k) => o[k] !== undefined)
        .sort()
        .map((k) => [k, sortKeys(o[k])]),
    );
  }
  return v;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}
