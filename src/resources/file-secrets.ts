import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MeshcaError } from '../pki/errors.js';
import { PRIVATE_MODE, PUBLIC_MODE, writeFileAtomic, writeFilesAtomic } from '../util/fs.js';
import { deepEqual } from './store.js';
import { Listeners } from '../util/listeners.js';
import {
  assertMayWrite,
  dataDigest,
  type SecretChange,
  type SecretContent,
  type SecretRef,
  type SecretSink,
  type StoredSecret,
  type WriteAuthority,
} from './secrets.js';

/** Istio's plugin-CA secret, which embedded mode keeps as the four files meshca and istiod read. */
export const CACERTS = { namespace: 'istio-system', name: 'cacerts' } as const;

interface MetaFile {
  type?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  keys: string[];
  version: number;
  digest: string;
}

/** Private material (keys, credentials) is written 0600; certificates stay world-readable like CaState's. */
function modeFor(key: string): number {
  return /key|secret|password|token|credential/i.test(key) ? PRIVATE_MODE : PUBLIC_MODE;
}

/**
 * Secrets as files. `<dir>/secrets/<ns>/<name>/<key>` with metadata beside it in
 * `<dir>/secrets/<ns>/<name>.meta.json`; a cluster's cacerts is `<dir>/clusters/<cluster>/cacerts/`
 * (the layout `meshca serve` and `meshca intermediate` use) with `cacerts.meta.json` beside it.
 * The data directory holds exactly the keys, like a mounted Secret volume. The meta file is
 * written last: watchers (the server's reload) watch it and read the data once it changes.
 */
export class FileSecretSink implements SecretSink {
  private readonly listeners = new Listeners<SecretChange>();

  constructor(readonly stateDir: string) {}

  dataDir(ref: SecretRef): string {
    if (!ref.cluster) return join(this.stateDir, 'secrets', ref.namespace, ref.name);
    if (ref.namespace === CACERTS.namespace && ref.name === CACERTS.name) return join(this.stateDir, 'clusters', ref.cluster, 'cacerts');
    return join(this.stateDir, 'clusters', ref.cluster, 'secrets', ref.namespace, ref.name);
  }

  /** The change marker of a secret: rewritten after every completed write. */
  metaPath(ref: SecretRef): string {
    return `${this.dataDir(ref)}.meta.json`;
  }

  async get(ref: SecretRef): Promise<StoredSecret | undefined> {
    const dir = this.dataDir(ref);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) return undefined;
    const meta = this.readMeta(ref);
    const keys = meta?.keys ?? readdirSync(dir).filter((n) => !n.startsWith('.') && statSync(join(dir, n)).isFile());
    const data: Record<string, Buffer> = {};
    for (const k of keys) {
      const p = join(dir, k);
      if (existsSync(p)) data[k] = readFileSync(p);
    }
    if (Object.keys(data).length === 0 && !meta) return undefined;
    return { ref, type: meta?.type, data, labels: meta?.labels, annotations: meta?.annotations, version: meta?.version ?? 0 };
  }

  private readMeta(ref: SecretRef): MetaFile | undefined {
    const p = this.metaPath(ref);
    if (!existsSync(p)) return undefined;
    try {
      return JSON.parse(readFileSync(p, 'utf8')) as MetaFile;
    } catch (e) {
      throw new MeshcaError('failed_precondition', 'corrupt_state', `${p} is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
  }

  async list(namespace?: string): Promise<StoredSecret[]> {
    const base = join(this.stateDir, 'secrets');
    if (!existsSync(base)) return [];
    const out: StoredSecret[] = [];
    for (const ns of namespace ? [namespace] : readdirSync(base)) {
      const d = join(base, ns);
      if (!existsSync(d) || !statSync(d).isDirectory()) continue;
      for (const name of readdirSync(d)) {
        if (!statSync(join(d, name)).isDirectory()) continue;
        const s = await this.get({ namespace: ns, name });
        if (s) out.push(s);
      }
    }
    return out;
  }

  async put(ref: SecretRef, content: SecretContent, by: WriteAuthority): Promise<boolean> {
    const existing = await this.get(ref);
    assertMayWrite(ref, existing, by);
    if (
      existing &&
      existing.type === content.type &&
      deepEqual(existing.labels ?? {}, content.labels ?? {}) &&
      deepEqual(existing.annotations ?? {}, content.annotations ?? {}) &&
      dataDigest(existing.data) === dataDigest(content.data)
    ) {
      return false;
    }
    const dir = this.dataDir(ref);
    writeFilesAtomic(
      dir,
      Object.entries(content.data).map(([name, data]) => ({ name, data, mode: modeFor(name) })),
    );
    for (const stale of Object.keys(existing?.data ?? {})) {
      if (!(stale in content.data)) rmSync(join(dir, stale), { force: true });
    }
    const version = (existing?.version ?? 0) + 1;
    const digest = dataDigest(content.data);
    const meta: MetaFile = {
      ...(content.type ? { type: content.type } : {}),
      ...(content.labels ? { labels: content.labels } : {}),
      ...(content.annotations ? { annotations: content.annotations } : {}),
      keys: Object.keys(content.data).sort(),
      version,
      digest,
    };
    writeFileAtomic(this.metaPath(ref), `${JSON.stringify(meta, null, 2)}\n`, PRIVATE_MODE);
    this.emit({ ref, version, digest });
    return true;
  }

  async delete(ref: SecretRef, by: WriteAuthority): Promise<boolean> {
    const existing = await this.get(ref);
    if (!existing) return false;
    assertMayWrite(ref, existing, by);
    rmSync(this.dataDir(ref), { recursive: true, force: true });
    rmSync(this.metaPath(ref), { force: true });
    this.emit({ ref, version: existing.version + 1, digest: '', deleted: true });
    return true;
  }

  onChange(listener: (c: SecretChange) => void): () => void {
    return this.listeners.add(listener);
  }

  private emit(c: SecretChange): void {
    this.listeners.emit(c);
  }
}
