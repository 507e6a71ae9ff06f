import { ISTIO_FILES } from '../ca/bundle.js';
import { MeshcaError } from '../pki/errors.js';
import { CACERTS } from '../resources/file-secrets.js';
import {
  assertMayWrite,
  dataDigest,
  MANAGED_BY_LABEL,
  OWNER_ANNOTATION,
  type SecretContent,
  type SecretRef,
  type SecretSink,
  type WriteAuthority,
} from '../resources/secrets.js';
import type { KubeClient } from './client.js';
import { readSecret, updateStateSecret } from './state-secret.js';

/** A cluster's bundle as the state Secret keeps it: Istio's four files as `cluster.<name>.<file>`, its owner as `cluster.<name>.owner`. */
export interface SharedBundle {
  data: Record<string, Buffer>;
  owner: string;
}

const OWNER_KEY = 'owner';
/** Parsed from the right: a cluster's name may itself contain dots. */
const ownerKeyRe = /^cluster\.(.+)\.owner$/;

/**
 * The per-cluster bundles the leader's controllers issue (RootTrustPolicy intermediates), kept in
 * the shared state Secret beside the CA's generations, so that the next leader continues with the
 * same intermediates instead of issuing new ones. Only bundles with an owner are kept here: the
 * bundle of the served cluster (`stateBackend: secret` with `upstream: local`) is the state's own.
 */
export class SharedCacerts {
  constructor(
    private readonly client: KubeClient,
    private readonly ref: { namespace: string; name: string },
  ) {}

  get description(): string {
    return `secret ${this.ref.namespace}/${this.ref.name}`;
  }

  async load(): Promise<Map<string, SharedBundle>> {
    const data = (await readSecret(this.client, this.ref, `the state ${this.description}`))?.data ?? {};
    const out = new Map<string, SharedBundle>();
    for (const [k, v] of Object.entries(data)) {
      const cluster = ownerKeyRe.exec(k)?.[1];
      if (!cluster) continue;
      const files = ISTIO_FILES.filter((f) => data[`cluster.${cluster}.${f}`] !== undefined);
      out.set(cluster, {
        owner: Buffer.from(v, 'base64').toString('utf8'),
        data: Object.fromEntries(files.map((f) => [f, Buffer.from(data[`cluster.${cluster}.${f}`], 'base64')])),
      });
    }
    return out;
  }

  /** Replaces (or, without `bundle`, removes) one cluster's keys. */
  async put(cluster: string, bundle: SharedBundle | undefined, guard?: () => void): Promise<void> {
    const key = (f: string) => `cluster.${cluster}.${f}`;
    await updateStateSecret(
      this.client,
      this.ref,
      `cluster ${cluster}'s bundle`,
      (data) => {
        for (const f of [...ISTIO_FILES, OWNER_KEY]) delete data[key(f)];
        if (bundle) {
          for (const f of ISTIO_FILES) if (bundle.data[f]) data[key(f)] = bundle.data[f].toString('base64');
          data[key(OWNER_KEY)] = Buffer.from(bundle.owner).toString('base64');
        }
        return true;
      },
      guard,
    );
  }
}

const isCacerts = (ref: SecretRef): ref is SecretRef & { cluster: string } =>
  !!ref.cluster && ref.namespace === CACERTS.namespace && ref.name === CACERTS.name;

/** Copies the shared bundles into the local sink (a new leader's first step): the Secret is authoritative. */
export async function restoreSharedCacerts(local: SecretSink, shared: SharedCacerts): Promise<string[]> {
  const restored: string[] = [];
  for (const [cluster, b] of await shared.load()) {
    const content = { data: b.data, labels: { [MANAGED_BY_LABEL]: 'meshca' }, annotations: { [OWNER_ANNOTATION]: b.owner } };
    if (await local.put({ cluster, ...CACERTS }, content, { user: true })) restored.push(cluster);
  }
  return restored;
}

/**
 * The controllers' sink on a leader with a shared state: a cluster's cacerts is saved to the
 * state Secret before the local copy changes (and before any delivery of it), so that a leader
 * killed right after issuing leaves its successor the same bundle. Everything else is local.
 * Once `term` aborts (leadership lost) nothing more is saved: the pass still running fails.
 */
export function sharedCacertsSink(local: SecretSink, shared: SharedCacerts, term: AbortSignal): SecretSink {
  const guard = () => {
    if (term.aborted) throw new MeshcaError('unavailable', 'not_leader', 'this replica no longer leads; the cluster bundle is not saved');
  };
  return {
    get: (ref) => local.get(ref),
    list: (ns) => local.list(ns),
    onChange: (l) => local.onChange(l),
    async put(ref: SecretRef, content: SecretContent, by: WriteAuthority): Promise<boolean> {
      const owner = content.annotations?.[OWNER_ANNOTATION];
      if (isCacerts(ref) && owner) {
        const existing = await local.get(ref);
        assertMayWrite(ref, existing, by);
        const same =
          existing && existing.annotations?.[OWNER_ANNOTATION] === owner && dataDigest(existing.data) === dataDigest(content.data);
        if (!same) await shared.put(ref.cluster, { data: content.data, owner }, guard);
      }
      return local.put(ref, content, by);
    },
    async delete(ref: SecretRef, by: WriteAuthority): Promise<boolean> {
      if (isCacerts(ref)) {
        assertMayWrite(ref, await local.get(ref), by);
        await shared.put(ref.cluster, undefined, guard);
      }
      return local.delete(ref, by);
    },
  };
}
