import { Option, type Command } from 'commander';

/**
 * Keeps the old names of a renamed flag working, hidden from --help: an old name parses its value
 * exactly as the canonical flag does, and the value lands under the canonical flag's name, so the
 * action sees only the canonical name. Giving both in one command is refused (which one was meant
 * is not clear); an old name prints a one-line note on stderr, never on stdout that scripts parse.
 * Call after the canonical option is added.
 */
export function renamedFlag(cmd: Command, canonical: string, ...oldNames: string[]): Command {
  const opt = cmd.options.find((o) => o.long === canonical);
  if (!opt) throw new Error(`${cmd.name()} has no option ${canonical}`);
  const arg = opt.flags.split(/[ ,|]+/).find((p) => p.startsWith('<') || p.startsWith('['));
  // A required canonical flag is checked after the old names are folded in; commander would check it first.
  const mandatory = opt.mandatory;
  opt.makeOptionMandatory(false);
  const aliases = oldNames.map((name) => {
    const alias = new Option(arg ? `${name} ${arg}` : name, `old name of ${canonical}`).hideHelp();
    if (opt.parseArg) alias.argParser(opt.parseArg);
    if (opt.argChoices) alias.choices(opt.argChoices);
    // The old value is parked under the old name until the hook moves it; it must not land on another option.
    if (cmd.options.some((o) => o.attributeName() === alias.attributeName()))
      throw new Error(`${cmd.name()}: ${name} collides with an option`);
    cmd.addOption(alias);
    return alias;
  });
  const key = opt.attributeName();
  cmd.hook('preAction', () => {
    for (const alias of aliases) {
      const old = alias.attributeName();
      if (cmd.getOptionValueSource(old) !== 'cli') continue;
      if (cmd.getOptionValueSource(key) === 'cli')
        cmd.error(`error: ${alias.long} is the old name of ${canonical}; give only ${canonical}`);
      cmd.setOptionValueWithSource(key, cmd.getOptionValue(old), 'cli');
      cmd.setOptionValueWithSource(old, undefined, undefined);
      process.stderr.write(`meshca: ${alias.long} is deprecated; use ${canonical}\n`);
    }
    if (mandatory && cmd.getOptionValue(key) === undefined) cmd.error(`error: required option '${opt.flags}' not specified`);
  });
  return cmd;
}
