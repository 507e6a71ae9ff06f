import type { V1Secret } from '@kubernetes/client-node';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ISTIO_FILES } from '../ca/bundle.js';
import { MeshcaError } from '../pki/errors.js';
import { OWNER_ANNOTATION } from '../resources/secrets.js';
import { PRIVATE_MODE, PUBLIC_MODE, writeFilesAtomic } from '../util/fs.js';
import { apiStatus, kubeError, type KubeClient } from './client.js';

/**
 * Where meshca's CA state (root and cluster bundles) is kept between restarts and shared between
 * replicas. The server always works on a state directory; a backend fills it before the CA is
 * bootstrapped and saves what bootstrap added.
 */
export interface StateBackend {
  readonly description: string;
  /**
   * Fills `dir` from the backend. When the backend holds nothing yet, `init(dir)` creates the
   * state there and it is saved, unless another replica saved first: then its state wins and
   * replaces ours, so every replica serves the same root.
   */
  prepare(dir: string, init: (dir: string) => void): Promise<'loaded' | 'created'>;
  /** Saves files present in `dir` but not in the backend (an intermediate for a new cluster). */
  save(dir: string): Promise<void>;
}

/** A Secret, or undefined when there is none; any other failure names `what`. */
export async function readSecret(
  client: KubeClient,
  ref: { namespace: string; name: string },
  what: string,
): Promise<V1Secret | undefined> {
  try {
    return await client.core.readNamespacedSecret(ref);
  } catch (e) {
    if (apiStatus(e) === 404) return undefined;
    throw kubeError(`reading ${what}`, e);
  }
}

/** meshca's state Secret with `data` (base64 values), replacing `resourceVersion` when given. */
export function stateSecretBody(
  ref: { namespace: string; name: string },
  data: Record<string, string>,
  resourceVersion?: string,
): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      ...ref,
      labels: { 'app.kubernetes.io/managed-by': 'meshca' },
      annotations: { [OWNER_ANNOTATION]: 'meshca/state' },
      ...(resourceVersion ? { resourceVersion } : {}),
    },
    data,
  };
}

/**
 * Read-modify-replace of a state Secret's data (base64 values) on its resourceVersion, retrying
 * conflicts with other replicas' writes. `change` edits the data in place and returns false when
 * there is nothing to write; `guard` runs before each attempt and throws to stop (a lost Lease).
 */
export async function updateStateSecret(
  client: KubeClient,
  ref: { namespace: string; name: string },
  what: string,
  change: (data: Record<string, string>) => boolean,
  guard?: () => void,
): Promise<boolean> {
  const where = `secret ${ref.namespace}/${ref.name}`;
  for (let attempt = 0; attempt < 5; attempt++) {
    guard?.();
    const cur = await readSecret(client, ref, `the state ${where}`);
    const data = { ...(cur?.data ?? {}) };
    if (!change(data)) return false;
    const body = stateSecretBody(ref, data, cur?.metadata?.resourceVersion);
    try {
      if (cur) await client.core.replaceNamespacedSecret({ ...ref, body });
      else await client.core.createNamespacedSecret({ namespace: ref.namespace, body });
      return true;
    } catch (e) {
      if (apiStatus(e) !== 409) throw kubeError(`writing ${what} to the state ${where}`, e);
    }
  }
  throw new MeshcaError('unavailable', 'state_conflict', `the state ${where} kept changing while ${what} was written`);
}

/** The state directory is the state (a volume): nothing to copy. */
export class DirStateBackend implements StateBackend {
  readonly description = 'state directory';
  async prepare(): Promise<'loaded'> {
    return 'loaded';
  }
  async save(): Promise<void> {}
}

const ROOT_FILES = ['root-cert.pem', 'root-key.pem'] as const;
const CLUSTER_KEY = /^cluster\.([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)\.(ca-cert\.pem|ca-key\.pem|cert-chain\.pem|root-cert\.pem)$/;
const isPrivate = (file: string) => file.endsWith('key.pem');

/** Secret keys may not contain "/": root/root-cert.pem -> root-cert.pem, clusters/east/cacerts/ca-key.pem -> cluster.east.ca-key.pem. */
export function stateFilesToData(dir: string): Record<string, Buffer> {
  const data: Record<string, Buffer> = {};
  for (const f of ROOT_FILES) {
    const p = join(dir, 'root', f);
    if (existsSync(p)) data[f] = readFileSync(p);
  }
  const clusters = join(dir, 'clusters');
  if (existsSync(clusters)) {
    for (const c of readdirSync(clusters)) {
      for (const f of ISTIO_FILES) {
        const p = join(clusters, c, 'cacerts', f);
        if (existsSync(p) && CLUSTER_KEY.test(`cluster.${c}.${f}`)) data[`cluster.${c}.${f}`] = readFileSync(p);
      }
    }
  }
  return data;
}

export function dataToStateFiles(dir: string, data: Record<string, Buffer>): void {
  const root = ROOT_FILES.filter((f) => data[f]).map((f) => ({ name: f, data: data[f], mode: isPrivate(f) ? PRIVATE_MODE : PUBLIC_MODE }));
  if (root.length > 0) writeFilesAtomic(join(dir, 'root'), root);
  const byCluster = new Map<string, { name: string; data: Buffer; mode: number }[]>();
  for (const [k, v] of Object.entries(data)) {
    const m = CLUSTER_KEY.exec(k);
    if (!m) continue;
    const files = byCluster.get(m[1]) ?? [];
    files.push({ name: m[3], data: v, mode: isPrivate(m[3]) ? PRIVATE_MODE : PUBLIC_MODE });
    byCluster.set(m[1], files);
  }
  for (const [c, files] of byCluster) writeFilesAtomic(join(dir, 'clusters', c, 'cacerts'), files);
}

/**
 * meshca's state in a Secret (default meshca-state in meshca's namespace), for pods without a
 * persistent volume: replicas read it at start, and the first one to create it decides the root.
 * Keys stay encrypted when MESHCA_KEY_PASSPHRASE is set, exactly as on disk.
 */
export class SecretStateBackend implements StateBackend {
  constructor(
    private readonly client: KubeClient,
    private readonly ref: { namespace: string; name: string },
  ) {}

  get description(): string {
    return `secret ${this.ref.namespace}/${this.ref.name}`;
  }

  private read(): Promise<V1Secret | undefined> {
    return readSecret(this.client, this.ref, `the state ${this.description}`);
  }

  private static decode(s: V1Secret): Record<string, Buffer> {
    const out: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(s.data ?? {})) out[k] = Buffer.from(v, 'base64');
    return out;
  }

  private body(data: Record<string, Buffer>, resourceVersion?: string): V1Secret {
    const encoded: Record<string, string> = {};
    for (const [k, v] of Object.entries(data)) encoded[k] = v.toString('base64');
    return stateSecretBody(this.ref, encoded, resourceVersion);
  }

  async prepare(dir: string, init: (dir: string) => void): Promise<'loaded' | 'created'> {
    const existing = await this.read();
    if (existing && Object.keys(existing.data ?? {}).length > 0) {
      dataToStateFiles(dir, SecretStateBackend.decode(existing));
      return 'loaded';
    }
    init(dir);
    const data = stateFilesToData(dir);
    try {
      if (existing)
        await this.client.core.replaceNamespacedSecret({ ...this.ref, body: this.body(data, existing.metadata?.resourceVersion) });
      else await this.client.core.createNamespacedSecret({ namespace: this.ref.namespace, body: this.body(data) });
      return 'created';
    } catch (e) {
      if (apiStatus(e) !== 409) throw kubeError(`saving the state ${this.description}`, e);
    }
    // Another replica saved its state first: drop ours and take theirs.
    rmSync(join(dir, 'root'), { recursive: true, force: true });
    rmSync(join(dir, 'clusters'), { recursive: true, force: true });
    const winner = await this.read();
    if (!winner)
      throw new MeshcaError('unavailable', 'state_race', `the state ${this.description} was created concurrently but cannot be read back`);
    dataToStateFiles(dir, SecretStateBackend.decode(winner));
    return 'loaded';
  }

  async save(dir: string): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const current = await this.read();
      const stored = current ? SecretStateBackend.decode(current) : {};
      const local = stateFilesToData(dir);
      const missing = Object.keys(local).filter((k) => !stored[k]);
      if (missing.length === 0) return;
      // Keys are only ever added: a replica never removes another's cluster bundle.
      const merged = { ...local, ...stored };
      try {
        if (current)
          await this.client.core.replaceNamespacedSecret({ ...this.ref, body: this.body(merged, current.metadata?.resourceVersion) });
        else await this.client.core.createNamespacedSecret({ namespace: this.ref.namespace, body: this.body(merged) });
        return;
      } catch (e) {
        if (apiStatus(e) !== 409) throw kubeError(`saving the state ${this.description}`, e);
      }
    }
    throw new MeshcaError('unavailable', 'state_conflict', `the state ${this.description} kept changing while meshca saved it`);
  }
}
