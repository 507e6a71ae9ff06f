import type { Command } from 'commander';

/** Flags kubectl users put before the command; meshca takes them after it. */
const AFTER_COMMAND = new Set(['-n', '--namespace']);

/**
 * A usage error prints the error and where to read more, not the whole help: a screen of help
 * scrolls the one line that matters away.
 */
export function hintAfterUsageErrors(program: Command, argv: string[]): void {
  const walk = (cmd: Command, path: string): void => {
    cmd.showHelpAfterError(`(see '${path} --help')`);
    for (const sub of cmd.commands) walk(sub, `${path} ${sub.name()}`);
  };
  walk(program, 'meshca');
  const moved = flagBeforeCommand(program, argv.slice(2));
  if (moved) program.showHelpAfterError(`(put ${moved.flag} after the command: ${moved.example}; see 'meshca --help')`);
}

/** `meshca -n ns get x` → the flag and the same command line with the flag after the command. */
function flagBeforeCommand(program: Command, args: string[]): { flag: string; example: string } | undefined {
  const flag = args[0]?.split('=')[0] ?? '';
  if (!AFTER_COMMAND.has(flag)) return undefined;
  const taken = args[0]!.includes('=') ? 1 : 2;
  const rest = args.slice(taken);
  if (!program.commands.some((c) => c.name() === rest[0])) return undefined;
  return { flag, example: ['meshca', rest[0], ...args.slice(0, taken), ...rest.slice(1)].join(' ') };
}
