import type { Command } from 'commander';
import { readSource, sourceRoots } from '../ca/sources.js';
import { certLabel } from '../pki/certificate.js';
import { verifyChain } from '../pki/chain.js';
import { invalid } from '../pki/errors.js';
import { emit, withOutput } from './output.js';

interface BundleReport {
  source: string;
  /** SHA-256 fingerprints of the roots this source carries. */
  roots: string[];
  /** Whether its own chain verifies to its own root(s); null when it has no chain or no root. */
  chainVerifies: boolean | null;
  problems: string[];
}

/**
 * `meshca compare-roots`: the multi-cluster trust check. Clusters (or proxies) can talk mTLS only
 * when they trust a common root, and each one's own chain must lead to the root it advertises.
 */
export function register(program: Command): void {
  const cmd = program
    .command('compare-roots')
    .description('check that bundles, chains or proxy secrets from different clusters share one root; exits 1 when they do not')
    .argument('<sources...>', 'bundle directories, PEM files, Secret manifests or proxy-config secret output (at least two)');
  withOutput(cmd).action((paths: string[], o: { output: string }) => {
    if (paths.length < 2) throw invalid('bad_args', 'compare-roots needs at least two sources');
    const now = new Date();
    const bundles: BundleReport[] = [];
    const roots = new Map<string, { subject: string; fingerprintSha256: string; sources: string[] }>();
    for (const path of paths) {
      const src = readSource(path);
      const own = sourceRoots(src);
      const b: BundleReport = { source: path, roots: own.map((r) => r.fingerprint256), chainVerifies: null, problems: [] };
      if (own.length === 0) {
        b.problems.push(`${path}: no root certificate found (a chain without its root; give root-cert.pem, ca.crt or the ROOTCA secret)`);
      }
      for (const r of own) {
        const entry = roots.get(r.fingerprint256) ?? { subject: certLabel(r), fingerprintSha256: r.fingerprint256, sources: [] };
        entry.sources.push(path);
        roots.set(r.fingerprint256, entry);
      }
      if (src.chain.length > 0 && own.length > 0) {
        const v = verifyChain(src.chain, { now, roots: own });
        b.chainVerifies = v.ok;
        if (!v.ok) b.problems.push(`${path}: its chain does not verify to its own root(s): ${v.problems.join('; ')}`);
      }
      bundles.push(b);
    }
    const common = bundles[0].roots.filter((fp) => bundles.every((b) => b.roots.includes(fp)));
    const problems = bundles.flatMap((b) => b.problems);
    if (common.length === 0) problems.push(`the ${paths.length} sources do not share a root`);
    const shared = common.length > 0;
    const doc = {
      ok: problems.length === 0,
      shared,
      sharedRoot: shared ? roots.get(common[0])! : null,
      roots: [...roots.values()],
      bundles,
      problems,
    };
    if (problems.length > 0) {
      process.stderr.write(problems.map((p) => `meshca: ${p}\n`).join(''));
      process.exitCode = 1;
    }
    emit(o.output, doc, () => {
      const lines = bundles.flatMap((b) => b.roots.map((fp) => `${b.source}: root ${roots.get(fp)!.subject} ${fp}\n`));
      if (problems.length === 0) lines.push(`all ${paths.length} sources share root ${doc.sharedRoot!.subject} (${common[0]})\n`);
      return lines.join('');
    });
  });
}
