import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage, invalid } from '../pki/errors.js';
import { checkedKubeconfig } from '../k8s/cluster-client.js';
import { CLUSTER, qualifiedName } from '../resources/kinds.js';
import type { ClusterSpec } from '../resources/meshca.js';
import type { LoadedDocument } from '../resources/load.js';
import type { ApplyOutcome, ResourceStore } from '../resources/store.js';
import { dataDigest, type SecretRef, type SecretSink, type StoredSecret } from '../resources/secrets.js';

/**
 * What `meshca apply -f` does with validated documents, shared with `serve --manifests` so that
 * both accept and store exactly the same things.
 */

/** A directory's manifest files (.yaml/.yml, and .json when asked), in name order, symlinks followed. */
export function manifestFiles(dir: string, o: { json?: boolean } = {}): string[] {
  const ext = o.json ? /\.(ya?ml|json)$/ : /\.ya?ml$/;
  return readdirSync(dir)
    .filter((n) => ext.test(n) && !n.startsWith('.'))
    .sort()
    .map((n) => join(dir, n))
    .filter((p) => statSync(p).isFile());
}

/** The texts behind -f: a file, "-" for stdin, or a directory's .yaml/.yml/.json files in name order. */
export function readSources(paths: string[]): { source: string; text: string }[] {
  const out: { source: string; text: string }[] = [];
  for (const p of paths) {
    if (p === '-') {
      out.push({ source: 'stdin', text: readFileSync(0, 'utf8') });
      continue;
    }
    let st;
    try {
      st = statSync(p);
    } catch {
      throw invalid('no_file', `the path "${p}" does not exist`);
    }
    if (st.isDirectory()) for (const f of manifestFiles(p, { json: true })) out.push({ source: f, text: readFileSync(f, 'utf8') });
    else out.push({ source: p, text: readFileSync(p, 'utf8') });
  }
  return out;
}

/**
 * Every Cluster's kubeconfig must load (file readable, Secret present in the state or in `batch`,
 * context known) before anything is stored; file paths are stored absolute. Returns the
 * problems, one per Cluster, each naming it.
 */
export async function clusterKubeconfigProblems(docs: LoadedDocument[], secrets: SecretSink, batch = docs): Promise<string[]> {
  const problems: string[] = [];
  const inBatch = async (ref: SecretRef): Promise<StoredSecret | undefined> => {
    const s = batch.map((d) => d.object.secret).find((x) => x && x.namespace === ref.namespace && x.name === ref.name);
    return s ? { ref, data: s.data, version: 0 } : secrets.get(ref);
  };
  for (const d of docs) {
    const r = d.object.resource;
    if (d.object.kind.kind !== CLUSTER.kind || !r) continue;
    const spec = r.spec as ClusterSpec;
    if (!spec.kubeconfig) continue;
    try {
      r.spec = { ...spec, kubeconfig: await checkedKubeconfig(r.metadata.name, spec.kubeconfig, inBatch) };
    } catch (e) {
      problems.push(`Cluster ${r.metadata.name}: ${errorMessage(e)}`);
    }
  }
  return problems;
}

/** Stores one validated document (a Secret through the sink, as the user; any other kind in the store). */
export async function applyDocument(
  c: { store: ResourceStore; secrets: SecretSink },
  d: LoadedDocument,
  now: Date,
  annotations: Record<string, string> = {},
): Promise<{ label: string; outcome: ApplyOutcome }> {
  const k = d.object.kind;
  if (d.object.secret) {
    const s = d.object.secret;
    const ref = { namespace: s.namespace, name: s.name };
    const before = await c.secrets.get(ref);
    const same = before && dataDigest(before.data) === dataDigest(s.data);
    const changed = await c.secrets.put(
      ref,
      { type: s.type, data: s.data, labels: s.labels, annotations: withAnnotations(s.annotations, annotations) },
      { user: true },
    );
    return { label: `${qualifiedName(k)}/${s.name}`, outcome: !before ? 'created' : changed || !same ? 'configured' : 'unchanged' };
  }
  const r = d.object.resource!;
  const input = { ...r, metadata: { ...r.metadata, annotations: withAnnotations(r.metadata.annotations, annotations) } };
  return { label: `${qualifiedName(k)}/${r.metadata.name}`, outcome: (await c.store.apply(k, input, now)).outcome };
}

function withAnnotations(own: Record<string, string> | undefined, extra: Record<string, string>): Record<string, string> | undefined {
  return Object.keys(extra).length === 0 ? own : { ...(own ?? {}), ...extra };
}
