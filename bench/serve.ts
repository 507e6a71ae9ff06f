import { Command, CommanderError } from 'commander';
import { register } from '../src/cli/serve.js';
import { exitCodeOf, toMeshcaError } from '../src/errors.js';
import { auditSetting } from '../src/serve/audit-setting.js';

/**
 * `meshca serve` with the switches only benchmarks and tests use, read from the environment here
 * so that the production entry (bin/meshca.js) never looks at them:
 *
 * - MESHCA_AUDIT=off: issuances are not audited, so that the benchmark can compare audit on/off.
 * - MESHCA_FAILPOINT_RENEWAL_PAUSE_MS: the replicated CA pauses between minting and committing a
 *   renewed intermediate, so that the HA test can kill a leader in the middle.
 *
 * Run as `node dist/bench/serve.js serve [flags]`. Workers of --workers re-run this file, so they
 * read the same switches from the environment they inherit.
 */
try {
  const switches = { audit: auditSetting(), renewalPauseMs: Number(process.env.MESHCA_FAILPOINT_RENEWAL_PAUSE_MS ?? 0) || undefined };
  const program = new Command('meshca').exitOverride();
  register(program, switches);
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
  const err = toMeshcaError(e);
  process.stderr.write(`meshca: ${err.message}\n`);
  process.exit(exitCodeOf(err));
}
