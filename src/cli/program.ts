import { Command } from 'commander';
import { COMMANDS } from './commands.js';
import { addEnvironmentHelp } from './help.js';
import { hintAfterUsageErrors } from './usage-errors.js';

/** Builds the CLI with the command named in argv, or with every command (help, unknown names). */
export async function buildProgram(argv: string[] = process.argv): Promise<Command> {
  const program = new Command('meshca')
    .description('Certificate-authority control plane for service meshes (Istio-compatible CA, mesh intermediates, trust checks)')
    .version('0.1.0')
    .exitOverride();
  const first = argv[2];
  const named = COMMANDS.filter((c) => c.name === first && !c.needsAll);
  for (const c of named.length > 0 ? named : COMMANDS) (await c.load()).register(program);
  addEnvironmentHelp(program);
  hintAfterUsageErrors(program, argv);
  return program;
}
