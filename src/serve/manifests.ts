import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { applyDocument, clusterKubeconfigProblems, manifestFiles } from '../controllers/apply-documents.js';
import { embeddedControllers } from '../controllers/index.js';
import { errorMessage, invalid } from '../pki/errors.js';
import { KINDS, qualifiedName } from '../resources/kinds.js';
import { loadManifests, type LoadedDocument } from '../resources/load.js';
import { objectKey } from '../resources/meta.js';

/** Marks what `serve --manifests` stored, so that only those objects are pruned when their file goes. */
export const APPLIED_FROM_ANNOTATION = 'meshca.io/applied-from';
const APPLIED_FROM = { [APPLIED_FROM_ANNOTATION]: 'manifests' };

export interface ManifestProblem {
  file: string;
  reason: string;
}

export interface ManifestsDeps {
  /** The directory of manifests (a ConfigMap or projected volume in Kubernetes). */
  dir: string;
  stateDir: string;
  passphrase?: string;
  log: Logger;
  now: () => Date;
  /** How often the directory is read again; default 2 s. */
  pollMs?: number;
}

/**
 * `serve --manifests DIR`: every replica applies DIR's manifests to its own resource store at
 * start and again whenever their content changes, with `meshca apply -f`'s validation, so that
 * whichever replica leads finds the same RootTrustPolicies, Clusters and Secrets. The content is
 * compared, not mtimes: a ConfigMap volume changes by swapping a symlink. A file that fails
 * validation is skipped whole and reported; objects from the directory that are gone from it are
 * deleted, but only while every file is valid (a typo must not delete a Cluster).
 */
export class ManifestsWatcher {
  private digest = '';
  private problems: ManifestProblem[] = [];
  private applied = 0;
  private lastApplied?: Date;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private readonly log: Logger;

  constructor(private readonly d: ManifestsDeps) {
    this.log = d.log.child({ component: 'manifests', dir: d.dir });
  }

  /** Applies the directory once (a directory that cannot be read is an error), then polls it. */
  async start(): Promise<void> {
    const files = this.files();
    await this.sync(files);
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.check().finally(() => (this.running = undefined));
    }, this.d.pollMs ?? 2000);
    this.timer.unref();
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** For /readyz: what was applied, and each file that was not, with why. */
  detail(): Record<string, unknown> {
    return { dir: this.d.dir, objects: this.applied, lastApplied: this.lastApplied?.toISOString(), problems: this.problems };
  }

  private files(): { file: string; text: string }[] {
    try {
      return manifestFiles(this.d.dir).map((file) => ({ file, text: readFileSync(file, 'utf8') }));
    } catch (e) {
      throw invalid('no_manifests', `the manifests directory ${this.d.dir} cannot be read: ${errorMessage(e)}`);
    }
  }

  /** One look at the directory (the poll's step): applies it when its content changed. */
  async check(): Promise<void> {
    try {
      await this.sync(this.files());
    } catch (e) {
      this.log.error({ err: errorMessage(e) }, 'applying the manifests failed; retrying at the next look');
    }
  }

  private async sync(files: { file: string; text: string }[]): Promise<void> {
    const h = createHash('sha256');
    for (const f of files) h.update(f.file).update('\0').update(f.text).update('\0');
    const digest = h.digest('hex');
    // With a problem the same content is tried again: a kubeconfig's Secret volume may arrive later.
    if (digest === this.digest && this.problems.length === 0) return;
    const c = embeddedControllers(this.d.stateDir, { passphrase: this.d.passphrase });
    const problems: ManifestProblem[] = [];
    const byFile = new Map<string, LoadedDocument[]>();
    const seen = new Map<string, string>();
    for (const f of files) {
      try {
        const docs = loadManifests(f.text, f.file);
        const dup = docs.map(keyOf).find((k) => seen.has(k));
        if (dup) throw new Error(`${dup} is also in ${seen.get(dup)}`);
        docs.forEach((x) => seen.set(keyOf(x), f.file));
        byFile.set(f.file, docs);
      } catch (e) {
        problems.push({ file: f.file, reason: errorMessage(e) });
      }
    }
    const all = [...byFile.values()].flat();
    for (const [file, docs] of byFile) {
      const bad = await clusterKubeconfigProblems(docs, c.secrets, all);
      if (bad.length === 0) continue;
      problems.push({ file, reason: bad.join('; ') });
      byFile.delete(file);
    }
    // Under the controllers' lock: a pass of the leader never sees half of a change.
    const release = await c.lock();
    try {
      const now = this.d.now();
      for (const docs of byFile.values()) {
        for (const d of docs) {
          const r = await applyDocument(c, d, now, APPLIED_FROM);
          if (r.outcome !== 'unchanged') this.log.info({ object: r.label, outcome: r.outcome }, 'manifest applied');
        }
      }
      if (problems.length === 0) await this.prune(c, new Set([...byFile.values()].flat().map(keyOf)));
    } finally {
      release();
    }
    const said = new Set(this.problems.map((p) => `${p.file}\0${p.reason}`));
    for (const p of problems)
      if (!said.has(`${p.file}\0${p.reason}`))
        this.log.error({ file: p.file, reason: p.reason }, 'manifest not applied; nothing is pruned meanwhile');
    this.problems = problems;
    this.applied = [...byFile.values()].reduce((n, docs) => n + docs.length, 0);
    this.lastApplied = this.d.now();
    this.digest = digest;
  }

  /** Deletes what an earlier look applied from the directory and is no longer in it. */
  private async prune(c: ReturnType<typeof embeddedControllers>, keep: Set<string>): Promise<void> {
    for (const kind of KINDS) {
      if (kind.kind === 'Secret') continue;
      for (const r of await c.store.list(kind)) {
        if (r.metadata.annotations?.[APPLIED_FROM_ANNOTATION] !== 'manifests') continue;
        if (keep.has(`${kind.kind}/${objectKey(r.metadata)}`)) continue;
        await c.store.delete(kind, r.metadata.name, r.metadata.namespace);
        this.log.info({ object: `${qualifiedName(kind)}/${objectKey(r.metadata)}` }, 'pruned: no longer in the manifests directory');
      }
    }
    for (const s of await c.secrets.list()) {
      if (s.annotations?.[APPLIED_FROM_ANNOTATION] !== 'manifests' || keep.has(`Secret/${objectKey(s.ref)}`)) continue;
      await c.secrets.delete(s.ref, { user: true });
      this.log.info({ object: `secret/${objectKey(s.ref)}` }, 'pruned: no longer in the manifests directory');
    }
  }
}

function keyOf(d: LoadedDocument): string {
  const o = d.object;
  const meta = o.resource?.metadata ?? o.secret!;
  return `${o.kind.kind}/${objectKey(meta)}`;
}

/** The watcher of `manifests`, started (first application done), or undefined when none is configured or this process runs no controllers. */
export async function watchManifests(
  config: { manifests?: string; dir: string },
  runsControllers: boolean,
  d: Pick<ManifestsDeps, 'log' | 'now' | 'passphrase'>,
): Promise<ManifestsWatcher | undefined> {
  if (!config.manifests || !runsControllers) return undefined;
  const w = new ManifestsWatcher({ ...d, dir: resolve(config.manifests), stateDir: config.dir });
  await w.start();
  return w;
}
