import { createHash } from 'node:crypto';
import { MeshcaError } from '../pki/errors.js';

/** Which secret: in the management plane, or (with `cluster`) in one workload cluster. */
export interface SecretRef {
  cluster?: string;
  namespace: string;
  name: string;
}

export interface SecretContent {
  type?: string;
  data: Record<string, Buffer>;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface StoredSecret extends SecretContent {
  ref: SecretRef;
  /** Counter bumped on each change; the change marker carries it too. */
  version: number;
}

/** Who may write a secret. Controllers name themselves; `apply` of a Secret speaks for the user. */
export type WriteAuthority = { owner: string } | { user: true };

export interface SecretChange {
  ref: SecretRef;
  version: number;
  /** SHA-256 over the data, so a watcher can tell a real change from a touch. */
  digest: string;
  deleted?: boolean;
}

/**
 * Where issued material goes. Embedded: files under the state directory, and the four Istio
 * files for each cluster's `cacerts`; in Kubernetes, Secrets (k8s/secret-sink.ts). The override
 * rule lives here so that no caller can forget it: a controller never replaces a secret it does
 * not own (annotation meshca.io/owner), and never one a user supplied.
 */
export interface SecretSink {
  get(ref: SecretRef): Promise<StoredSecret | undefined>;
  list(namespace?: string): Promise<StoredSecret[]>;
  /** Writes atomically; returns false when the content was already exactly this. */
  put(ref: SecretRef, content: SecretContent, by: WriteAuthority): Promise<boolean>;
  delete(ref: SecretRef, by: WriteAuthority): Promise<boolean>;
  /** In-process notification after each completed write (the server's reload hook). */
  onChange(listener: (c: SecretChange) => void): () => void;
}

export const OWNER_ANNOTATION = 'meshca.io/owner';
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';

export function secretLabel(ref: SecretRef): string {
  return `${ref.cluster ? `cluster ${ref.cluster}: ` : ''}secret ${ref.namespace}/${ref.name}`;
}

export function dataDigest(data: Record<string, Buffer>): string {
  const h = createHash('sha256');
  for (const k of Object.keys(data).sort()) {
    h.update(k).update('\0').update(data[k]).update('\0');
  }
  return h.digest('hex');
}

/** The override rule. Throws failed_precondition naming the secret and its owner. */
export function assertMayWrite(ref: SecretRef, existing: StoredSecret | undefined, by: WriteAuthority): void {
  if (!existing || 'user' in by) return;
  const owner = existing.annotations?.[OWNER_ANNOTATION];
  if (owner === by.owner) return;
  const why = owner
    ? `it is managed by ${owner}`
    : 'it was not created by meshca (no meshca.io/owner annotation); delete it or give it to meshca to let this controller take over';
  throw new MeshcaError('failed_precondition', 'secret_not_owned', `refusing to replace ${secretLabel(ref)}: ${why}`);
}
