import type { Command } from 'commander';
import { readInputFile } from '../ca/sources.js';
import { openStateToCreate, withDir } from './options.js';

interface ImportOptions {
  dir?: string;
  cert: string;
  key?: string;
  force?: boolean;
}

/** `meshca root import`: adopt a root made elsewhere (openssl, Istio's tools/certs, a corporate PKI). */
export function register(program: Command): void {
  const root = program.command('root').description('manage the root CA');
  const cmd = root
    .command('import')
    .description('adopt an existing self-signed root; without --key, cluster intermediates must come from `meshca ca import`')
    .requiredOption('--cert <file>', 'root certificate (PEM)')
    .option('--key <file>', 'root private key (PEM: PKCS#8, PKCS#1 or SEC1)')
    .option('--force', 'replace an existing root');
  withDir(cmd).action((o: ImportOptions) => {
    const { state, announce } = openStateToCreate(o);
    const certPem = readInputFile(o.cert, 'root certificate').toString('utf8');
    const keyPem = o.key === undefined ? undefined : readInputFile(o.key, 'root key').toString('utf8');
    const { cert, key } = state.importRoot(certPem, keyPem, { force: o.force });
    announce();
    process.stdout.write(
      [
        `imported root "${cert.subject}" into ${state.rootCertPath}`,
        `  key:         ${cert.keyInfo.label}${key ? ` (private key stored in ${state.rootKeyPath}, mode 0600)` : ' (certificate only)'}`,
        `  not after:   ${cert.notAfter.toISOString()}`,
        `  fingerprint: ${cert.fingerprint256}`,
        '',
      ].join('\n'),
    );
    if (!key) {
      process.stderr.write(
        'meshca: warning: the root was imported without its key; bring cluster intermediates with `meshca ca import DIR --cluster NAME`\n',
      );
    }
  });
}
