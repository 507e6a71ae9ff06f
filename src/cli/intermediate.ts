import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { writeIstioBundle } from '../ca/bundle.js';
import { invalid } from '../pki/errors.js';
import { DEFAULT_KEY_ALGORITHM, KEY_ALGORITHMS, parseKeyAlgorithm, type KeyAlgorithm } from '../pki/keys.js';
import { openState, parseIntOption, withDir } from './options.js';
import { renamedFlag } from './renamed.js';

interface IntermediateOptions {
  dir?: string;
  cluster: string;
  out: string;
  intermediateDays: number;
  pathlen: number;
  keyAlgorithm: KeyAlgorithm;
  istioNamespace: string;
}

/** `meshca intermediate`: a cluster's plugin CA signed by the root, written in Istio's cacerts layout. */
export function register(program: Command): void {
  const cmd = program
    .command('intermediate')
    .description("create a cluster intermediate signed by the root and write Istio's plugin-CA bundle and cacerts Secret")
    .requiredOption('--cluster <name>', 'cluster name (a DNS label)')
    .requiredOption('--out <dir>', 'where to write ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem and cacerts.yaml')
    .option('--intermediate-days <n>', "validity in days (clamped to the root's)", parseIntOption('--intermediate-days', 1, 36500), 365)
    .option('--pathlen <n>', 'basicConstraints pathlen; 0 lets it sign only workloads', parseIntOption('--pathlen', 0, 10), 0)
    .addOption(
      new Option('--key-algorithm <alg>', `intermediate key algorithm (${KEY_ALGORITHMS.join(', ')})`)
        .argParser(parseKeyAlgorithm)
        .default(DEFAULT_KEY_ALGORITHM),
    )
    .option('--istio-namespace <ns>', 'namespace of the cacerts Secret', 'istio-system');
  renamedFlag(cmd, '--intermediate-days', '--days');
  renamedFlag(cmd, '--key-algorithm', '--key');
  renamedFlag(cmd, '--istio-namespace', '--namespace');
  withDir(cmd).action((o: IntermediateOptions) => {
    const out = resolve(o.out);
    // Checked before anything is created, so a bad --out leaves the state directory untouched too.
    if (existsSync(out) && !statSync(out).isDirectory()) throw invalid('bad_out', `--out ${o.out} exists and is not a directory`);
    const state = openState(o);
    const now = new Date();
    const b = state.createIntermediate(o.cluster, { alg: o.keyAlgorithm, days: o.intermediateDays, pathLen: o.pathlen, now });
    const files = writeIstioBundle(out, b, { namespace: o.istioNamespace });
    if (b.clamped) {
      process.stderr.write(
        `meshca: warning: the intermediate's NotAfter was clamped to the root's (${b.caCert.notAfter.toISOString()}); ${o.intermediateDays} days were requested\n`,
      );
    }
    process.stdout.write(
      [
        `created intermediate "${b.caCert.subject}" for cluster ${o.cluster}`,
        `  key:         ${b.caCert.keyInfo.label}, pathlen ${o.pathlen}`,
        `  not after:   ${b.caCert.notAfter.toISOString()}`,
        `  fingerprint: ${b.caCert.fingerprint256}`,
        `  wrote ${files.join(', ')} to ${out}`,
        `  apply with: kubectl apply -f ${resolve(out, 'cacerts.yaml')}`,
        '',
      ].join('\n'),
    );
  });
}
