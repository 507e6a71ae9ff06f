import type { Command } from 'commander';
import { embeddedControllers, reconcileAll, type ReconcileEvent, type ReconcileReport } from '../controllers/index.js';
import { invalid } from '../pki/errors.js';
import { existingStateDir, withDir } from './options.js';

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

export function formatEvent(e: ReconcileEvent): string {
  return `${e.object}: ${e.action}${e.message ? `: ${e.message}` : ''}`;
}

/** Runs one reconciliation over the state directory and prints what happened, one line per event. */
export async function runReconcile(
  o: { dir?: string; at?: string; dryRun?: boolean },
  out: (line: string) => void,
): Promise<ReconcileReport> {
  const c = embeddedControllers(existingStateDir(o.dir), { passphrase: process.env.MESHCA_KEY_PASSPHRASE });
  const now = parseAt(o.at);
  const report = await reconcileAll(c, { now, dryRun: o.dryRun });
  for (const e of report.events) out(formatEvent(e));
  return report;
}

interface ReconcileOptions {
  dir?: string;
  at?: string;
  dryRun?: boolean;
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
    .addHelpText(
      'after',
      '\nExamples:\n  meshca reconcile\n  meshca reconcile --at +30d --dry-run\n  meshca reconcile --at 2031-01-01T00:00:00Z',
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
  });
}
