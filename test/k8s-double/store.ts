import { randomBytes, randomUUID } from 'node:crypto';

/** A stored object: plain JSON as the API server would return it. */
export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string; [k: string]: unknown };
  [k: string]: unknown;
};

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WatchEvent {
  type: EventType;
  object: KubeObject;
  rv: number;
}

/** Where a resource lives: "certificatesigningrequests" or "secrets", in a namespace or cluster-wide. */
export interface ResourceKey {
  resource: string;
  namespace?: string;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const clone = <T>(o: T): T => structuredClone(o);

/**
 * The objects of the double with one global resourceVersion counter (as etcd gives the real
 * API server), and a bounded event history per resource from which watches are served. compact()
 * forgets history so that a watch from an older resourceVersion gets 410 Gone.
 */
export class ObjectStore {
  private rv = 0;
  /** Events older than this resourceVersion are gone. */
  private compactedRv = 0;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private readonly history = new Map<string, WatchEvent[]>();
  /** Per resource: the newest resourceVersion dropped from a full history. */
  private readonly trimmed = new Map<string, number>();
  private readonly listeners = new Set<(resource: string, e: WatchEvent) => void>();

  get resourceVersion(): number {
    return this.rv;
  }

  private bucket(resource: string): Map<string, KubeObject> {
    let b = this.objects.get(resource);
    if (!b) this.objects.set(resource, (b = new Map()));
    return b;
  }

  private static id(ns: string | undefined, name: string): string {
    return `${ns ?? ''}/${name}`;
  }

  get(k: ResourceKey, name: string): KubeObject | undefined {
    const o = this.bucket(k.resource).get(ObjectStore.id(k.namespace, name));
    return o && clone(o);
  }

  list(k: ResourceKey): KubeObject[] {
    return [...this.bucket(k.resource).values()]
      .filter((o) => k.namespace === undefined || o.metadata.namespace === k.namespace)
      .sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion))
      .map(clone);
  }

  create(k: ResourceKey, obj: KubeObject): KubeObject {
    const b = this.bucket(k.resource);
    const m = obj.metadata ?? ({} as KubeObject['metadata']);
    if (!m.name && typeof m.generateName === 'string') m.name = `${m.generateName}${randomBytes(3).toString('hex').slice(0, 5)}`;
    if (!m.name) throw new ApiError(422, 'Invalid', 'metadata.name: Required value: name or generateName is required');
    const id = ObjectStore.id(k.namespace, m.name);
    if (b.has(id)) throw new ApiError(409, 'AlreadyExists', `${k.resource} "${m.name}" already exists`);
    const stored: KubeObject = {
      ...clone(obj),
      metadata: {
        ...m,
        ...(k.namespace ? { namespace: k.namespace } : {}),
        uid: randomUUID(),
        creationTimestamp: new Date().toISOString(),
        resourceVersion: String(++this.rv),
      },
    };
    b.set(id, stored);
    this.emit(k.resource, 'ADDED', stored);
    return clone(stored);
  }

  /** Replaces an object; a resourceVersion in the body must match the stored one (optimistic concurrency). */
  update(k: ResourceKey, name: string, mutate: (current: KubeObject) => KubeObject, expectedRv?: string): KubeObject {
    const b = this.bucket(k.resource);
    const id = ObjectStore.id(k.namespace, name);
    const current = b.get(id);
    if (!current) throw new ApiError(404, 'NotFound', `${k.resource} "${name}" not found`);
    if (expectedRv !== undefined && expectedRv !== '' && expectedRv !== current.metadata.resourceVersion) {
      throw new ApiError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${k.resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
      );
    }
    const next = mutate(clone(current));
    const stored: KubeObject = {
      ...next,
      metadata: {
        ...next.metadata,
        name,
        uid: current.metadata.uid,
        creationTimestamp: current.metadata.creationTimestamp,
        ...(k.namespace ? { namespace: k.namespace } : {}),
        resourceVersion: String(++this.rv),
      },
    };
    b.set(id, stored);
    this.emit(k.resource, 'MODIFIED', stored);
    return clone(stored);
  }

  delete(k: ResourceKey, name: string): KubeObject {
    const b = this.bucket(k.resource);
    const id = ObjectStore.id(k.namespace, name);
    const current = b.get(id);
    if (!current) throw new ApiError(404, 'NotFound', `${k.resource} "${name}" not found`);
    b.delete(id);
    // A deletion is an event with a new resourceVersion, as in etcd.
    const gone: KubeObject = { ...current, metadata: { ...current.metadata, resourceVersion: String(++this.rv) } };
    this.emit(k.resource, 'DELETED', gone);
    return clone(gone);
  }

  private emit(resource: string, type: EventType, object: KubeObject): void {
    const e: WatchEvent = { type, object: clone(object), rv: this.rv };
    let h = this.history.get(resource);
    if (!h) this.history.set(resource, (h = []));
    h.push(e);
    if (h.length > 1000) this.trimmed.set(resource, h.shift()!.rv);
    for (const l of this.listeners) l(resource, e);
  }

  /** Events after `rv`, or undefined when history that old is gone (the 410 case). */
  eventsSince(resource: string, rv: number): WatchEvent[] | undefined {
    if (rv < this.compactedRv || rv < (this.trimmed.get(resource) ?? 0)) return undefined;
    return (this.history.get(resource) ?? []).filter((e) => e.rv > rv);
  }

  subscribe(l: (resource: string, e: WatchEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Forgets every event up to now: watches from an older resourceVersion get 410 Gone. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history.clear();
  }
}
