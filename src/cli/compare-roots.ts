import type { Command } from 'commander';
import { readSource, sourceRoots } from '../ca/sources.js';
import { certLabel } from '../pki/certificate.js';
import { verifyChain } from '../pki/chain.js';
import { invalid } from '../pki/errors.js';

/**
 * `meshca compare-roots`: the multi-cluster trust check. Clusters (or proxies) can talk mTLS only
 * when they trust a common root, and each one's own chain must lead to the root it advertises.
 */
export function register(program: Command): void {
  program
    .command('compare-roots')
    .description('check that bundles, chains or proxy secrets from different clusters share one root; exits 1 when they do not')
    .argument('<sources...>', 'bundle directories, PEM files, Secret manifests or proxy-config secret output (at least two)')
    .action((paths: string[]) => {
      if (paths.length < 2) throw invalid('bad_args', 'compare-roots needs at least two sources');
      const now = new Date();
      const problems: string[] = [];
      const sets: Set<string>[] = [];
      const subjects = new Map<string, string>();
      for (const path of paths) {
        const src = readSource(path);
        const roots = sourceRoots(src);
        if (roots.length === 0) {
          problems.push(`${path}: no root certificate found (a chain without its root; give root-cert.pem, ca.crt or the ROOTCA secret)`);
        }
        for (const r of roots) {
          subjects.set(r.fingerprint256, certLabel(r));
          process.stdout.write(`${path}: root ${certLabel(r)} ${r.fingerprint256}\n`);
        }
        sets.push(new Set(roots.map((r) => r.fingerprint256)));
        if (src.chain.length > 0 && roots.length > 0) {
          const v = verifyChain(src.chain, { now, roots });
          if (!v.ok) problems.push(`${path}: its chain does not verify to its own root(s): ${v.problems.join('; ')}`);
        }
      }
      const common = [...sets[0]].filter((fp) => sets.every((s) => s.has(fp)));
      if (common.length === 0) problems.push(`the ${paths.length} sources do not share a root`);
      if (problems.length > 0) {
        process.stderr.write(problems.map((p) => `meshca: ${p}\n`).join(''));
        process.exitCode = 1;
        return;
      }
      process.stdout.write(`all ${paths.length} sources share root ${subjects.get(common[0])} (${common[0]})\n`);
    });
}
