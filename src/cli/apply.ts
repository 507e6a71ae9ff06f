import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { embeddedControllers } from '../controllers/index.js';
import { errorMessage, invalid } from '../pki/errors.js';
import { checkedKubeconfig } from '../k8s/cluster-client.js';
import { CLUSTER, qualifiedName } from '../resources/kinds.js';
import type { ClusterSpec } from '../resources/meshca.js';
import { loadManifests, type LoadedDocument } from '../resources/load.js';
import type { ApplyOutcome } from '../resources/store.js';
import { dataDigest, type SecretRef, type SecretSink, type StoredSecret } from '../resources/secrets.js';
import { defaultStateDir } from '../ca/state.js';
import { withDir } from './options.js';
import { parseAt, runReconcile } from './reconcile.js';

interface ApplyOptions {
  dir?: string;
  filename: string[];
  reconcile: boolean;
  at?: string;
  namespace: string;
}

/** The texts behind -f: a file, "-" for stdin, or a directory's .yaml/.yml/.json files in name order. */
function readSources(paths: string[]): { source: string; text: string }[] {
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
    if (st.isDirectory()) {
      for (const f of readdirSync(p)
        .filter((n) => /\.(ya?ml|json)$/.test(n))
        .sort())
        out.push({ source: join(p, f), text: readFileSync(join(p, f), 'utf8') });
    } else {
      out.push({ source: p, text: readFileSync(p, 'utf8') });
    }
  }
  return out;
}

/**
 * Every Cluster's kubeconfig must load (file readable, Secret present in the state or in this
 * apply, context known) before anything is stored; file paths are stored absolute.
 */
async function checkClusterKubeconfigs(docs: LoadedDocument[], secrets: SecretSink): Promise<void> {
  const problems: string[] = [];
  const inBatch = async (ref: SecretRef): Promise<StoredSecret | undefined> => {
    const s = docs.map((d) => d.object.secret).find((x) => x && x.namespace === ref.namespace && x.name === ref.name);
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
  if (problems.length > 0) throw invalid('invalid_manifest', problems.join('\n'));
}

/**
 * `meshca apply -f FILE|-`: validates every document first (a bad file changes nothing), stores
 * them, then runs one reconciliation so that status is current when the command returns.
 */
export function register(program: Command): void {
  const cmd = program
    .command('apply')
    .description(
      'create or update resources from YAML (cert-manager Certificates and Issuers, AWSPCAIssuers, Gloo RootTrustPolicies, meshca kinds, Secrets), then reconcile',
    )
    .requiredOption('-f, --filename <path...>', 'file, directory or - for stdin; multi-document YAML')
    .option('-n, --namespace <ns>', 'namespace for objects that name none', 'default')
    .option('--no-reconcile', 'store only; controllers act at the next `meshca reconcile`')
    .option('--at <time>', 'reconcile as if at this time (ISO 8601 or +DURATION)');
  withDir(cmd).action(async (o: ApplyOptions) => {
    const docs: LoadedDocument[] = [];
    const problems: string[] = [];
    for (const s of readSources(o.filename)) {
      try {
        docs.push(...loadManifests(s.text, s.source, o.namespace));
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    if (problems.length > 0) throw invalid('invalid_manifest', problems.join('\n'));
    const c = embeddedControllers(o.dir ?? defaultStateDir(), { passphrase: process.env.MESHCA_KEY_PASSPHRASE });
    await checkClusterKubeconfigs(docs, c.secrets);
    const now = parseAt(o.at);
    for (const d of docs) {
      const k = d.object.kind;
      let outcome: ApplyOutcome;
      let name: string;
      if (d.object.secret) {
        const s = d.object.secret;
        name = s.name;
        const ref = { namespace: s.namespace, name: s.name };
        const before = await c.secrets.get(ref);
        const same = before && dataDigest(before.data) === dataDigest(s.data);
        const changed = await c.secrets.put(
          ref,
          { type: s.type, data: s.data, labels: s.labels, annotations: s.annotations },
          { user: true },
        );
        outcome = !before ? 'created' : changed || !same ? 'configured' : 'unchanged';
      } else {
        name = d.object.resource!.metadata.name;
        outcome = (await c.store.apply(k, d.object.resource!, now)).outcome;
      }
      process.stdout.write(`${qualifiedName(k)}/${name} ${outcome}\n`);
    }
    if (o.reconcile) {
      await runReconcile({ dir: o.dir, at: o.at }, (line) => process.stderr.write(`reconcile: ${line}\n`));
    }
  });
}
