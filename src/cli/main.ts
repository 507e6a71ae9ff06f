import { CommanderError } from 'commander';
import { exitCodeOf, toMeshcaError } from '../errors.js';
import { buildProgram } from './program.js';

try {
  const program = await buildProgram();
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
  const err = toMeshcaError(e);
  process.stderr.write(`meshca: ${err.message}\n`);
  if (process.env.MESHCA_DEBUG && err.cause) process.stderr.write(`${String((err.cause as Error)?.stack ?? err.cause)}\n`);
  process.exit(exitCodeOf(err));
}
