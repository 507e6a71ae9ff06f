import type { V1Secret } from '@kubernetes/client-node';
import { MeshcaError } from '../pki/errors.js';
import {
  assertMayWrite,
  dataDigest,
  secretLabel,
  type SecretChange,
  type SecretContent,
  type SecretRef,
  type SecretSink,
  type StoredSecret,
  type WriteAuthority,
} from '../resources/secrets.js';
import { deepEqual } from '../resources/store.js';
import { apiStatus, kubeError, type KubeClient } from './client.js';
import { Listeners } from '../util/listeners.js';

export interface KubeSecretSinkOptions {
  /** The cluster meshca runs in: secrets without `cluster` go here. */
  client: KubeClient;
  /** Workload clusters by name, for refs that name one. */
  clusters?: Record<string, KubeClient>;
  /**
   * Replace secrets meshca does not own (getistio's overrideExistingCACertsSecret). Off by
   * default: a hand-made cacerts is never overwritten.
   */
  override?: boolean;
}

/** Kubernetes' resourceVersion is opaque; the sink's version counter is its numeric value when it has one. */
function versionOf(rv: string | undefined): number {
  const n = Number(rv);
  return Number.isSafeInteger(n) ? n : 0;
}

function toStored(ref: SecretRef, s: V1Secret): StoredSecret {
  const data: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(s.data ?? {})) data[k] = Buffer.from(v, 'base64');
  for (const [k, v] of Object.entries(s.stringData ?? {})) data[k] = Buffer.from(v, 'utf8');
  return {
    ref,
    type: s.type,
    data,
    labels: s.metadata?.labels,
    annotations: s.metadata?.annotations,
    version: versionOf(s.metadata?.resourceVersion),
  };
}

/**
 * SecretSink on Kubernetes Secrets (the resources engineer's interface; FileSecretSink is the
 * embedded twin). The override rule is the same: a secret not annotated meshca.io/owner by the
 * writer is never replaced unless `override` is set. Writes carry the resourceVersion read, so a
 * concurrent change is a conflict, never a silent overwrite.
 */
export class KubeSecretSink implements SecretSink {
  private readonly listeners = new Listeners<SecretChange>();

  constructor(private readonly o: KubeSecretSinkOptions) {}

  private clientFor(ref: SecretRef): KubeClient {
    if (!ref.cluster) return this.o.client;
    const c = this.o.clusters?.[ref.cluster];
    if (!c)
      throw new MeshcaError('not_found', 'no_cluster_client', `no kubeconfig for cluster "${ref.cluster}" to write ${secretLabel(ref)}`);
    return c;
  }

  async get(ref: SecretRef): Promise<StoredSecret | undefined> {
    const s = await this.read(ref);
    return s && toStored(ref, s);
  }

  private async read(ref: SecretRef): Promise<V1Secret | undefined> {
    try {
      return await this.clientFor(ref).core.readNamespacedSecret({ name: ref.name, namespace: ref.namespace });
    } catch (e) {
      if (apiStatus(e) === 404) return undefined;
      throw kubeError(`reading ${secretLabel(ref)}`, e);
    }
  }

  async list(namespace?: string): Promise<StoredSecret[]> {
    const core = this.o.client.core;
    try {
      const l = namespace ? await core.listNamespacedSecret({ namespace }) : await core.listSecretForAllNamespaces();
      return l.items.map((s) => toStored({ namespace: s.metadata?.namespace ?? namespace ?? '', name: s.metadata?.name ?? '' }, s));
    } catch (e) {
      throw kubeError(`listing secrets${namespace ? ` in ${namespace}` : ''}`, e);
    }
  }

  async put(ref: SecretRef, content: SecretContent, by: WriteAuthority): Promise<boolean> {
    const current = await this.read(ref);
    const existing = current && toStored(ref, current);
    if (!this.o.override) assertMayWrite(ref, existing, by);
    if (
      existing &&
      (existing.type ?? 'Opaque') === (content.type ?? 'Opaque') &&
      deepEqual(existing.labels ?? {}, content.labels ?? {}) &&
      deepEqual(existing.annotations ?? {}, content.annotations ?? {}) &&
      dataDigest(existing.data) === dataDigest(content.data)
    ) {
      return false;
    }
    const core = this.clientFor(ref).core;
    const data: Record<string, string> = {};
    for (const [k, v] of Object.entries(content.data)) data[k] = v.toString('base64');
    const body = (rv?: string): V1Secret => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: ref.name,
        namespace: ref.namespace,
        labels: content.labels,
        annotations: content.annotations,
        ...(rv ? { resourceVersion: rv } : {}),
      },
      type: content.type ?? 'Opaque',
      data,
    });
    let written: V1Secret;
    try {
      if (!current) written = await core.createNamespacedSecret({ namespace: ref.namespace, body: body() });
      else if ((current.type ?? 'Opaque') !== (content.type ?? 'Opaque')) {
        // A Secret's type is immutable: replacing one of another type means delete, then create.
        await core.deleteNamespacedSecret({ name: ref.name, namespace: ref.namespace });
        written = await core.createNamespacedSecret({ namespace: ref.namespace, body: body() });
      } else
        written = await core.replaceNamespacedSecret({
          name: ref.name,
          namespace: ref.namespace,
          body: body(current.metadata?.resourceVersion),
        });
    } catch (e) {
      if (apiStatus(e) === 409) {
        throw new MeshcaError('unavailable', 'secret_conflict', `${secretLabel(ref)} changed while meshca was writing it; retrying later`, {
          cause: e,
        });
      }
      throw kubeError(`writing ${secretLabel(ref)}`, e);
    }
    this.emit({ ref, version: versionOf(written.metadata?.resourceVersion), digest: dataDigest(content.data) });
    return true;
  }

  async delete(ref: SecretRef, by: WriteAuthority): Promise<boolean> {
    const current = await this.read(ref);
    if (!current) return false;
    if (!this.o.override) assertMayWrite(ref, toStored(ref, current), by);
    try {
      await this.clientFor(ref).core.deleteNamespacedSecret({ name: ref.name, namespace: ref.namespace });
    } catch (e) {
      if (apiStatus(e) === 404) return false;
      throw kubeError(`deleting ${secretLabel(ref)}`, e);
    }
    this.emit({ ref, version: versionOf(current.metadata?.resourceVersion), digest: '', deleted: true });
    return true;
  }

  onChange(listener: (c: SecretChange) => void): () => void {
    return this.listeners.add(listener);
  }

  private emit(c: SecretChange): void {
    this.listeners.emit(c);
  }
}
