import type { Command } from 'commander';
import { checkBundle } from '../ca/bundle-check.js';
import { readBundle } from '../ca/sources.js';
import { certLabel } from '../pki/certificate.js';
import { MeshcaError } from '../pki/errors.js';
import { openStateToCreate, withDir } from './options.js';

interface CaImportOptions {
  dir?: string;
  cluster?: string;
  force?: boolean;
}

/**
 * `meshca ca import`: checks a plugin-CA bundle made elsewhere (openssl, Istio's tools/certs,
 * cert-manager) and, with --cluster, adopts it so that `meshca issue` can sign with it.
 */
export function register(program: Command): void {
  const ca = program.command('ca').description('work with plugin-CA bundles (Istio cacerts)');
  const cmd = ca
    .command('import')
    .description(
      'validate a plugin-CA bundle (ca-cert.pem/ca-key.pem/cert-chain.pem/root-cert.pem or tls.crt/tls.key/ca.crt) and optionally adopt it',
    )
    .argument('<bundle>', 'bundle directory, or a cacerts Secret manifest')
    .option('--cluster <name>', "store the bundle as this cluster's intermediate in the state directory")
    .option('--force', "replace the cluster's existing intermediate");
  withDir(cmd).action((path: string, o: CaImportOptions) => {
    const now = new Date();
    const report = checkBundle(readBundle(path), { now });
    for (const w of report.warnings) process.stderr.write(`meshca: warning: ${w}\n`);
    if (!report.ok || !report.bundle) {
      throw new MeshcaError(
        'invalid_argument',
        'invalid_bundle',
        `${path} is not a usable plugin-CA bundle (${report.errors.length} problem(s)):\n${report.errors.map((e) => `  - ${e}`).join('\n')}`,
      );
    }
    const b = report.bundle;
    const root = b.chain[b.chain.length - 1];
    process.stdout.write(
      [
        `${path}: valid plugin-CA bundle (${report.layout} layout)${report.warnings.length ? ` with ${report.warnings.length} warning(s)` : ''}`,
        `  signing CA:  "${b.caCert.subject}" (${b.caCert.keyInfo.label}, pathlen ${b.caCert.ext.basicConstraints?.pathLen ?? 'unlimited'}, not after ${b.caCert.notAfter.toISOString()})`,
        `  chain:       ${b.chain.map((c) => certLabel(c)).join(' -> ')}`,
        `  root:        ${root.fingerprint256}`,
        '',
      ].join('\n'),
    );
    if (!o.cluster) return;
    const { state, announce } = openStateToCreate(o);
    if (state.hasRoot()) {
      const own = state.loadRoot().cert;
      if (!own.der.equals(root.der)) {
        throw new MeshcaError(
          'failed_precondition',
          'root_mismatch',
          `the bundle chains to root ${certLabel(root)} (${root.fingerprint256}) but the root in ${state.dir} is ${certLabel(own)} (${own.fingerprint256}); use another --dir or import that root first`,
        );
      }
    }
    state.adoptCluster(o.cluster, b, { force: o.force });
    announce();
    process.stdout.write(
      `adopted as cluster ${o.cluster} in ${state.clusterDir(o.cluster)}; issue with \`meshca issue --cluster ${o.cluster}\`\n`,
    );
  });
}
