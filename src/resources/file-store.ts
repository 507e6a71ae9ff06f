import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MeshcaError } from '../pki/errors.js';
import { writeFileAtomic } from '../util/fs.js';
import { byCodeUnit } from '../util/order.js';
import type { KindInfo } from './kinds.js';
import { objectKey, type ObjectMeta, type Resource, type ResourceInput } from './meta.js';
import { conflict, deepEqual, type ApplyOutcome, type ResourceStore } from './store.js';

/** Directory name of a kind, like a Kubernetes resource name: certificates.cert-manager.io */
export function kindDirName(kind: KindInfo): string {
  return kind.group ? `${kind.plural}.${kind.group}` : kind.plural;
}

/**
 * The embedded store: one JSON file per object, `<dir>/resources/<plural.group>/<namespace>/<name>.json`
 * (cluster-scoped kinds have no namespace level), each replaced atomically. resourceVersion is
 * a per-object counter; it guards status updates against a concurrent writer.
 */
export class FileResourceStore implements ResourceStore {
  readonly root: string;

  constructor(stateDir: string) {
    this.root = join(stateDir, 'resources');
  }

  private path(kind: KindInfo, name: string, namespace?: string): string {
    const base = join(this.root, kindDirName(kind));
    if (!kind.namespaced) return join(base, `${name}.json`);
    if (!namespace)
      throw new MeshcaError('invalid_argument', 'namespace_required', `${kind.kind} "${name}" is namespaced; give a namespace`);
    return join(base, namespace, `${name}.json`);
  }

  private read<T extends Resource>(path: string): T | undefined {
    if (!existsSync(path)) return undefined;
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as T;
    } catch (e) {
      throw new MeshcaError('failed_precondition', 'corrupt_state', `${path} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
  }

  private write(path: string, obj: Resource): void {
    writeFileAtomic(path, `${JSON.stringify(obj, null, 2)}\n`, 0o600);
  }

  async get<T extends Resource>(kind: KindInfo, name: string, namespace?: string): Promise<T | undefined> {
    return this.read<T>(this.path(kind, name, namespace));
  }

  async list<T extends Resource>(kind: KindInfo, namespace?: string): Promise<T[]> {
    const base = join(this.root, kindDirName(kind));
    if (!existsSync(base)) return [];
    const files: string[] = [];
    if (!kind.namespaced) {
      for (const f of readdirSync(base)) if (f.endsWith('.json')) files.push(join(base, f));
    } else {
      const namespaces = namespace ? [namespace] : readdirSync(base).filter((n) => !n.startsWith('.'));
      for (const ns of namespaces) {
        const d = join(base, ns);
        if (!existsSync(d)) continue;
        for (const f of readdirSync(d)) if (f.endsWith('.json')) files.push(join(d, f));
      }
    }
    const out = files.map((f) => this.read<T>(f)!).filter(Boolean);
    return out.sort((a, b) => byCodeUnit(objectKey(a.metadata), objectKey(b.metadata)));
  }

  async apply<T extends Resource>(
    kind: KindInfo,
    input: ResourceInput,
    now: Date,
    owners?: Resource[],
  ): Promise<{ object: T; outcome: ApplyOutcome }> {
    const { name, namespace } = input.metadata;
    const path = this.path(kind, name, namespace);
    const existing = this.read<T>(path);
    const ownerReferences = owners?.map((o) => ({
      apiVersion: o.apiVersion,
      kind: o.kind,
      name: o.metadata.name,
      uid: o.metadata.uid,
      controller: true,
    }));
    if (!existing) {
      const metadata: ObjectMeta = {
        ...input.metadata,
        uid: randomUUID(),
        resourceVersion: '1',
        generation: 1,
        creationTimestamp: now.toISOString(),
        ...(ownerReferences ? { ownerReferences } : {}),
      };
      const object = { apiVersion: input.apiVersion, kind: input.kind, metadata, spec: input.spec } as T;
      this.write(path, object);
      return { object, outcome: 'created' };
    }
    const specChanged = !deepEqual(existing.spec, input.spec);
    const metaChanged =
      !deepEqual(existing.metadata.labels ?? {}, input.metadata.labels ?? {}) ||
      !deepEqual(existing.metadata.annotations ?? {}, input.metadata.annotations ?? {}) ||
      (ownerReferences !== undefined && !deepEqual(existing.metadata.ownerReferences, ownerReferences));
    if (!specChanged && !metaChanged) return { object: existing, outcome: 'unchanged' };
    const metadata: ObjectMeta = {
      ...existing.metadata,
      labels: input.metadata.labels,
      annotations: input.metadata.annotations,
      resourceVersion: String(Number(existing.metadata.resourceVersion) + 1),
      generation: existing.metadata.generation + (specChanged ? 1 : 0),
      ...(ownerReferences ? { ownerReferences } : {}),
    };
    const object = { ...existing, metadata, spec: input.spec } as T;
    this.write(path, object);
    return { object, outcome: 'configured' };
  }

  async updateStatus<T extends Resource>(kind: KindInfo, object: T): Promise<T> {
    const { name, namespace } = object.metadata;
    const path = this.path(kind, name, namespace);
    const current = this.read<T>(path);
    if (!current) throw new MeshcaError('not_found', 'not_found', `${kind.kind} ${objectKey(object.metadata)} no longer exists`);
    if (current.metadata.resourceVersion !== object.metadata.resourceVersion) throw conflict(`${kind.kind} ${objectKey(object.metadata)}`);
    if (deepEqual(current.status, object.status)) return current;
    const next = {
      ...current,
      status: object.status,
      metadata: { ...current.metadata, resourceVersion: String(Number(current.metadata.resourceVersion) + 1) },
    } as T;
    this.write(path, next);
    return next;
  }

  async delete(kind: KindInfo, name: string, namespace?: string): Promise<boolean> {
    const path = this.path(kind, name, namespace);
    if (!existsSync(path)) return false;
    rmSync(path, { force: true });
    return true;
  }
}
