import type { Command } from 'commander';
import { readCertificateFile, readSource } from '../ca/sources.js';
import { verifyChain } from '../pki/chain.js';
import { describeIdentity, renderIdentity } from '../pki/describe.js';
import { invalid } from '../pki/errors.js';

interface VerifyOptions {
  root: string;
  ca?: boolean;
}

/** `meshca verify`: exit 0 only when the chain verifies to --root; every reason otherwise, exit 1. */
export function register(program: Command): void {
  program
    .command('verify')
    .description('verify a certificate chain against a root; exits 1 and lists every reason when it does not verify')
    .argument('<source>', 'chain file (leaf first), bundle directory, Secret manifest or proxy-config secret output')
    .requiredOption('--root <file>', 'trusted root certificate(s), PEM')
    .option('--ca', 'the chain starts with a CA (a plugin-CA bundle) rather than a workload certificate')
    .action((path: string, o: VerifyOptions) => {
      const roots = readCertificateFile(o.root, 'root file');
      const src = readSource(path);
      if (src.chain.length === 0) throw invalid('no_chain', `${path} holds no certificate chain to verify`);
      // Workload chains must start with an end entity; a plugin-CA bundle starts with its CA.
      const r = verifyChain(src.chain, { now: new Date(), roots, leafIsEndEntity: !(o.ca || src.caBundle) });
      if (!r.ok) {
        process.stderr.write(`meshca: ${path} does not verify against ${o.root}:\n${r.problems.map((p) => `  - ${p}`).join('\n')}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(
        `OK: ${path}: chain of ${r.path.length} certificate(s) verifies to root "${r.anchor!.subject}" (${r.anchor!.fingerprint256})\n` +
          `${renderIdentity(describeIdentity(src.chain[0].ext.san))}\n`,
      );
    });
}
