import { Option, type Command } from 'commander';
import { parseSubject, type SubjectSpec } from '../pki/name.js';
import { DEFAULT_KEY_ALGORITHM, KEY_ALGORITHMS, parseKeyAlgorithm, type KeyAlgorithm } from '../pki/keys.js';
import { openStateToCreate, parseIntOption, withDir } from './options.js';
import { renamedFlag } from './renamed.js';

interface InitOptions {
  dir?: string;
  keyAlgorithm: KeyAlgorithm;
  org: string;
  cn?: string;
  subject?: SubjectSpec;
  rootDays: number;
  force?: boolean;
}

/** `meshca init`: a self-signed root with the same defaults as Istio's own (O=cluster.local, RSA 2048, 10 years). */
export function register(program: Command): void {
  const cmd = program
    .command('init')
    .description("create a self-signed root CA in the state directory (defaults match Istio's self-signed root)")
    .addOption(
      new Option('--key-algorithm <alg>', `root key algorithm (${KEY_ALGORITHMS.join(', ')})`)
        .argParser(parseKeyAlgorithm)
        .default(DEFAULT_KEY_ALGORITHM),
    )
    .option('--org <name>', 'subject organisation (O)', 'cluster.local')
    .option('--cn <name>', 'subject common name (CN); none by default, like Istio')
    .addOption(
      new Option(
        '--subject <dn>',
        "whole subject instead of --org/--cn: openssl's /C=US/O=Example/OU=Mesh/CN=Root CA or RFC 4514's CN=Root CA,O=Example,C=US (C, ST, L, street, postalCode, O, OU, serialNumber, CN)",
      )
        .argParser(parseSubject)
        .conflicts(['org', 'cn']),
    )
    .option('--root-days <n>', 'validity in days', parseIntOption('--root-days', 1, 36500), 3650)
    .option('--force', 'replace an existing root (its intermediates stop chaining to the new one)');
  renamedFlag(cmd, '--key-algorithm', '--key');
  renamedFlag(cmd, '--root-days', '--days');
  withDir(cmd).action((o: InitOptions) => {
    const { state, announce } = openStateToCreate(o);
    const cert = state.initRoot({
      alg: o.keyAlgorithm,
      subject: o.subject ?? { organization: [o.org], ...(o.cn ? { commonName: o.cn } : {}) },
      days: o.rootDays,
      now: new Date(),
      force: o.force,
    });
    process.stdout.write(
      [
        `created root "${cert.subject}" in ${state.rootCertPath}`,
        `  key:         ${cert.keyInfo.label} (${state.rootKeyPath}, mode 0600)`,
        `  not after:   ${cert.notAfter.toISOString()}`,
        `  fingerprint: ${cert.fingerprint256}`,
        '',
      ].join('\n'),
    );
    announce();
  });
}
