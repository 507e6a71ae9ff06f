import type { Command } from 'commander';
import { exitCodeOf, MeshcaError, type ErrorCode } from '../errors.js';

/** How each error code reads in the exit-code list; typed so that a new code cannot be left out. */
const EXIT_MEANING: Record<ErrorCode, string> = {
  internal: 'an internal error',
  invalid_argument: 'an invalid argument, file or configuration',
  not_found: 'not found',
  already_exists: 'already exists (pass --force where offered)',
  failed_precondition: 'a failed precondition (unreadable state, a key that cannot be decrypted)',
  unauthenticated: 'unauthenticated',
  permission_denied: 'permission denied',
  resource_exhausted: 'throttled',
  unavailable: 'unavailable',
  deadline_exceeded: 'timed out',
};

/** Exit code of the commands that reconcile (`apply`, `reconcile`, `delete`, `cluster add|remove`) when they did their work but a resource ended failed. */
export const EXIT_RESOURCES_FAILED = 8;

/** What the CLI exits with, grouped from src/errors.ts so the help cannot drift from the real mapping. */
export function exitCodesHelp(): string {
  const byExit = new Map<number, string[]>([
    [0, ['success']],
    [1, ['a check found a problem (verify, compare-roots, doctor)']],
    [2, ['a usage error (unknown command or option, missing argument)']],
  ]);
  for (const [code, meaning] of Object.entries(EXIT_MEANING)) {
    const exit = exitCodeOf(new MeshcaError(code as ErrorCode, code, ''));
    byExit.set(exit, [...(byExit.get(exit) ?? []), meaning]);
  }
  byExit.set(EXIT_RESOURCES_FAILED, [
    'apply, reconcile, delete or cluster add|remove did their work but a resource ended failed (listed on stderr)',
  ]);
  const lines = [...byExit.entries()].sort(([a], [b]) => a - b).map(([exit, m]) => `  ${exit}  ${m.join('; ')}`);
  return ['Exit codes:', ...lines].join('\n');
}

const KEY_ENV = [
  ['MESHCA_HOME', 'state directory when --dir is not given (default: ./.meshca)'],
  ['MESHCA_KEY_PASSPHRASE', 'encrypts the CA and token-issuer keys at rest (PKCS#8, AES-256-CBC); must be set to read keys stored with it'],
];

const OTHER_ENV = [
  ['MESHCA_CONFIG', 'serve: YAML configuration file (default: meshca.yaml in the state directory)'],
  ['MESHCA_<SETTING>', 'serve: any setting of `meshca serve --help`, e.g. MESHCA_GRPC_ADDR for --grpc-addr (flags win)'],
  ['KUBECONFIG', 'kubeconfig when --kubeconfig is not given (then ~/.kube/config, then in-cluster)'],
  ['AWS_REGION', 'AWS Private CA region when no region flag is given (also AWS_DEFAULT_REGION)'],
  ['HOSTNAME', 'identity in leader-election Leases when --pod-name is not given'],
  ['MESHCA_NATIVE', '0 turns the native signature module off (node:crypto only)'],
  ['MESHCA_DEBUG', 'set to print the underlying cause with an error'],
];

function envSection(rows: string[][]): string {
  const width = Math.max(...rows.map(([name]) => name.length));
  return ['Environment:', ...rows.map(([name, text]) => `  ${name.padEnd(width)}  ${text}`)].join('\n');
}

/** Commands that read or write CA or token-issuer keys, by their path below `meshca`. */
const KEY_COMMANDS = new Set([
  'serve',
  'token',
  'pca-api',
  'init',
  'root import',
  'intermediate',
  'ca import',
  'issue',
  'apply',
  'reconcile',
  'cluster add',
  'cluster remove',
  'k8s-signer',
]);

function path(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Adds the Environment and Exit codes sections to `meshca --help`, and the key variables to commands that use keys. */
export function addEnvironmentHelp(program: Command): void {
  program.addHelpText('after', `\n${envSection([...KEY_ENV, ...OTHER_ENV])}\n\n${exitCodesHelp()}\n`);
  const walk = (cmd: Command): void => {
    if (KEY_COMMANDS.has(path(cmd))) {
      cmd.addHelpText('after', `\n${envSection(KEY_ENV)}\n\nExit codes: see \`meshca --help\`.\n`);
    }
    cmd.commands.forEach(walk);
  };
  program.commands.forEach(walk);
}
