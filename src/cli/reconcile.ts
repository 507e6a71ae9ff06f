import type { Command } from 'commander';
import { embeddedControllers, failedResources, reconcileAll, type ReconcileEvent, type ReconcileReport } from '../controllers/index.js';
import { invalid } from '../pki/errors.js';
import type { ResourceStore } from '../resources/store.js';
import { EXIT_RESOURCES_FAILED } from './help.js';
import { existingStateDir, withDir } from './options.js';
import { stderrProgress } from './progress.js';

/** When a command runs "as if at": an ISO 8601 time, or +DURATION from now (+30d, +12h, +90m). */
export function parseAt(value: string | undefined, now: Date = new Date()): Date {
  if (value === undefined) return now;
  const rel = /^\+(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(value.trim());
  if (rel) {
    const mult = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(now.getTime() + Number(rel[1]) * mult);
  }
  const t = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value.trim()) || Number.isNaN(t)) {
    throw invalid('bad_time', `--at "${value}" is not a time; use ISO 8601 (2030-01-31T12:00:00Z) or +DURATION (+30d, +12h)`);
  }
  return new Date(t);
}

/** How far --at may be from now and still write without --allow-future-material: clocks and typing. */
const AT_SLACK_MS = 5 * 60_000;

/**
 * Material issued "as if at" another time is not valid now (not yet, or no longer): written into
 * live bundles it breaks the mesh. Only --dry-run, or a flag that names the risk, may do that.
 */
export function checkAtWrites(o: { at?: string; dryRun?: boolean; allowFutureMaterial?: boolean }, at: Date, now = new Date()): void {
  if (o.at === undefined || o.dryRun || o.allowFutureMaterial) return;
  if (Math.abs(at.getTime() - now.getTime()) <= AT_SLACK_MS) return;
  throw invalid(
    'at_writes_invalid_material',
    `--at ${o.at} (${at.toISOString()}) without --dry-run would write certificates that are not valid now into the state directory and cluster bundles; add --dry-run to see what would happen, or --allow-future-material if you really mean to write them`,
  );
}

export const ALLOW_FUTURE_HELP =
  'with --at and without --dry-run: write material issued as if at that time, though it is not valid now (testing only)';

export function formatEvent(e: ReconcileEvent): string {
  return `${e.object}: ${e.action}${e.message ? `: ${e.message}` : ''}`;
}

export const FAILED_EXIT_HELP = `Exit code ${EXIT_RESOURCES_FAILED}: a resource ended failed; each is listed on stderr with its reason and message.`;

/**
 * Lists on stderr the resources whose status records a failure and sets the exit code: a script
 * running `meshca apply` must not read success while a certificate sits in backoff.
 */
export async function reportFailures(c: { store: ResourceStore }): Promise<number> {
  const failed = await failedResources(c.store);
  if (failed.length === 0) return 0;
  process.stderr.write(`meshca: ${failed.length} resource(s) failed:\n`);
  for (const f of failed) process.stderr.write(`  ${f.object}: ${f.reason}: ${f.message}\n`);
  process.exitCode = EXIT_RESOURCES_FAILED;
  return failed.length;
}

/** Runs one reconciliation over the state directory and prints what happened, one line per event. */
export async function runReconcile(
  o: { dir?: string; at?: string; dryRun?: boolean; allowFutureMaterial?: boolean },
  out: (line: string) => void,
): Promise<ReconcileReport & { controllers: ReturnType<typeof embeddedControllers> }> {
  const now = parseAt(o.at);
  checkAtWrites(o, now);
  const c = embeddedControllers(existingStateDir(o.dir), { passphrase: process.env.MESHCA_KEY_PASSPHRASE, progress: stderrProgress() });
  const report = await reconcileAll(c, { now, dryRun: o.dryRun });
  for (const e of report.events) out(formatEvent(e));
  return { ...report, controllers: c };
}

/** The reconcile that `cluster add|remove` and `delete` run after their change, reported as `reconcile` reports it. */
export async function reconcileAfterChange(dir: string | undefined): Promise<void> {
  const r = await runReconcile({ dir }, (line) => process.stderr.write(`reconcile: ${line}\n`));
  await reportFailures(r.controllers);
}

interface ReconcileOptions {
  dir?: string;
  at?: string;
  dryRun?: boolean;
  allowFutureMaterial?: boolean;
}

/** `meshca reconcile`: one pass of every controller, optionally as if at another time, optionally without writing. */
export function register(program: Command): void {
  const cmd = program
    .command('reconcile')
    .description('run one reconciliation pass of every controller (renewals, retries, per-cluster intermediates)')
    .option('--at <time>', 'run as if at this time: ISO 8601 or +DURATION (e.g. +30d); default now')
    .option(
      '--dry-run',
      'report what would be issued or renewed, write nothing (e.g. --at +30d --dry-run: what renews in the next 30 days)',
    )
    .option('--allow-future-material', ALLOW_FUTURE_HELP)
    .addHelpText(
      'after',
      `\nExamples:\n  meshca reconcile\n  meshca reconcile --at +30d --dry-run\n  meshca reconcile --at 2031-01-01T00:00:00Z --dry-run\n\n${FAILED_EXIT_HELP}`,
    );
  withDir(cmd).action(async (o: ReconcileOptions) => {
    const at = parseAt(o.at);
    const lines: string[] = [];
    const report = await runReconcile(o, (l) => lines.push(l));
    const when = at.toISOString();
    if (o.dryRun) process.stdout.write(`dry run at ${when}: nothing was written\n`);
    for (const l of lines) process.stdout.write(`${l}\n`);
    if (lines.length === 0) process.stdout.write(`nothing to do at ${when}\n`);
    if (report.nextWakeup) process.stdout.write(`next renewal or retry due at ${report.nextWakeup.toISOString()}\n`);
    if (!o.dryRun) await reportFailures(report.controllers);
  });
}
