import type { Command } from 'commander';
import { applyDocument, clusterKubeconfigProblems, readSources } from '../controllers/apply-documents.js';
import { embeddedControllers } from '../controllers/index.js';
import { invalid } from '../pki/errors.js';
import { loadManifests, type LoadedDocument } from '../resources/load.js';
import { stateDirToCreate, withDir } from './options.js';
import { stderrProgress } from './progress.js';
import { ALLOW_FUTURE_HELP, FAILED_EXIT_HELP, checkAtWrites, parseAt, reportFailures, runReconcile } from './reconcile.js';

interface ApplyOptions {
  dir?: string;
  filename: string[];
  reconcile: boolean;
  at?: string;
  allowFutureMaterial?: boolean;
  namespace: string;
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
    .option('--at <time>', 'reconcile as if at this time (ISO 8601 or +DURATION)')
    .option('--allow-future-material', ALLOW_FUTURE_HELP)
    .addHelpText('after', `\n${FAILED_EXIT_HELP}`);
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
    const now = parseAt(o.at);
    // Refused before anything is stored: the reconcile that follows would write with --at.
    if (o.reconcile) checkAtWrites(o, now);
    const target = stateDirToCreate(o.dir);
    const c = embeddedControllers(target.dir, { passphrase: process.env.MESHCA_KEY_PASSPHRASE, progress: stderrProgress() });
    const bad = await clusterKubeconfigProblems(docs, c.secrets);
    if (bad.length > 0) throw invalid('invalid_manifest', bad.join('\n'));
    for (const d of docs) {
      const { label, outcome } = await applyDocument(c, d, now);
      process.stdout.write(`${label} ${outcome}\n`);
    }
    target.announce();
    if (o.reconcile) {
      await runReconcile({ dir: target.dir, at: o.at, allowFutureMaterial: o.allowFutureMaterial }, (line) =>
        process.stderr.write(`reconcile: ${line}\n`),
      );
      await reportFailures(c);
    }
  });
}
