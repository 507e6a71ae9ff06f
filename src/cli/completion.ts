import { Argument, type Command } from 'commander';

interface Node {
  /** Space-separated path below `meshca`; "" for meshca itself. */
  path: string;
  subcommands: { name: string; description: string }[];
  options: { flags: string[]; description: string }[];
}

/** The command tree as commander holds it, so the scripts never list a command or flag that does not exist. */
function walk(cmd: Command, path = ''): Node[] {
  const visible = cmd.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
  const node: Node = {
    path,
    subcommands: visible.map((c) => ({ name: c.name(), description: c.description() })),
    options: [...cmd.options.filter((o) => !o.hidden), cmd.createOption('-h, --help', 'display help for command')].map((o) => ({
      flags: [o.long, o.short].filter((f): f is string => f !== undefined),
      description: o.description,
    })),
  };
  return [node, ...visible.flatMap((c) => walk(c, path ? `${path} ${c.name()}` : c.name()))];
}

const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

function bash(nodes: Node[]): string {
  const cases = (pick: (n: Node) => string[]) => nodes.map((n) => `    ${quote(n.path)}) echo ${quote(pick(n).join(' '))} ;;`).join('\n');
  return `# meshca completion for bash; load it with: source <(meshca completion bash)
_meshca_subcommands() {
  case "$1" in
${cases((n) => n.subcommands.map((s) => s.name))}
  esac
}
_meshca_options() {
  case "$1" in
${cases((n) => n.options.flatMap((o) => o.flags))}
  esac
}
_meshca() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" i w subs
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    subs=" $(_meshca_subcommands "$path") "
    if [[ $w != -* && $subs == *" $w "* ]]; then path="\${path:+$path }$w"; fi
  done
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_meshca_options "$path")" -- "$cur")
  else
    mapfile -t COMPREPLY < <(compgen -W "$(_meshca_subcommands "$path")" -- "$cur")
    [[ \${#COMPREPLY[@]} -eq 0 ]] && mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  fi
  return 0
}
complete -o filenames -F _meshca meshca
`;
}

/** zsh runs the bash script through its bash-completion emulation. */
function zsh(nodes: Node[]): string {
  return `# meshca completion for zsh; load it with: source <(meshca completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash(nodes)}`;
}

function fish(nodes: Node[]): string {
  const lines = ['# meshca completion for fish; load it with: meshca completion fish | source', 'complete -c meshca -f'];
  for (const n of nodes) {
    const words = n.path === '' ? [] : n.path.split(' ');
    const seen = words.map((w) => `__fish_seen_subcommand_from ${w}`);
    const cond = (extra: string[]) => quote([...(seen.length ? seen : ['__fish_use_subcommand']), ...extra].join('; and '));
    const notYet = n.subcommands.length ? [`not __fish_seen_subcommand_from ${n.subcommands.map((s) => s.name).join(' ')}`] : [];
    for (const s of n.subcommands) {
      lines.push(`complete -c meshca -n ${cond(seen.length ? notYet : [])} -a ${quote(s.name)} -d ${quote(s.description)}`);
    }
    for (const o of n.options) {
      const flags = o.flags.map((f) => (f.startsWith('--') ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`)).join(' ');
      lines.push(`complete -c meshca -n ${cond(notYet)} ${flags} -d ${quote(o.description)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

export const SHELLS = { bash, zsh, fish };

/** The completion script for a shell, from the program with every command registered. */
export function completionScript(program: Command, shell: keyof typeof SHELLS): string {
  return SHELLS[shell](walk(program));
}

/** `meshca completion bash|zsh|fish`. */
export function register(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script (bash, zsh or fish) for meshca')
    .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(Object.keys(SHELLS)))
    .action((shell: keyof typeof SHELLS) => {
      process.stdout.write(completionScript(program, shell));
    });
}
