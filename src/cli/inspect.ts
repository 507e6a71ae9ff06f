import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Option, type Command } from 'commander';
import { readCertificateFile, readSource, sourceRoots } from '../ca/sources.js';
import { verifyChain } from '../pki/chain.js';
import {
  chainRole,
  describeChain,
  describeCertificate,
  describeCsr,
  describeIdentity,
  renderReport,
  type ChainDescription,
  type InspectReport,
} from '../pki/describe.js';
import { emit, withOutput } from './output.js';

interface InspectOptions {
  root?: string;
  json?: boolean;
  output: string;
}

/**
 * The root-cert.pem that `agent` and `issue` write beside cert-chain.pem, for the hint when a
 * chain file is inspected alone (the directory form would have found it).
 */
function siblingRoot(path: string): string | undefined {
  const root = join(dirname(path), 'root-cert.pem');
  return statSync(path).isFile() && existsSync(root) ? `${root} (beside it), or inspect the directory ${dirname(path)}` : undefined;
}

/** `meshca inspect`: what a certificate, chain, CSR, bundle or proxy secret holds, and whether it verifies. */
export function register(program: Command): void {
  const cmd = program
    .command('inspect')
    .description('describe certificates, chains, CSRs, bundle directories or `istioctl proxy-config secret` output (JSON or YAML)')
    .argument('<source>', 'PEM/DER file, bundle directory, Secret manifest or proxy-config secret output')
    .option('--root <file>', 'verify the chain against this root instead of the one the source carries')
    // Kept for scripts written before -o json existed.
    .addOption(new Option('--json', 'same as -o json').hideHelp());
  withOutput(cmd).action((path: string, o: InspectOptions) => {
    const now = new Date();
    const src = readSource(path);
    const extra = o.root ? readCertificateFile(o.root, 'root file') : undefined;
    const roots = extra ?? sourceRoots(src);
    const trustedFrom = o.root ? `--root ${o.root}` : (src.rootsFrom ?? 'the self-signed certificate ending the chain');
    const inChain = new Set(src.chain.map((c) => c.fingerprint256));
    let chain: ChainDescription | null = null;
    if (src.chain.length > 0) {
      chain =
        roots.length === 0
          ? {
              verified: false,
              trustedFrom: 'nothing',
              root: null,
              problems: [`the source carries no root to verify against; pass --root ${siblingRoot(path) ?? 'FILE'}`],
            }
          : describeChain(verifyChain(src.chain, { now, roots }), trustedFrom);
    }
    const report: InspectReport = {
      source: path,
      kind: src.layout ? `${src.kind}, ${src.layout} layout` : src.kind,
      certificates: [
        ...src.chain.map((c, i) => describeCertificate(c, now, chainRole(c, i))),
        ...src.roots.filter((r) => !inChain.has(r.fingerprint256)).map((r) => describeCertificate(r, now, 'trusted root')),
      ],
      csrs: src.csrs.map(describeCsr),
      chain,
      identity: src.chain[0] ? describeIdentity(src.chain[0].ext.san) : src.csrs[0] ? describeIdentity(src.csrs[0].sans) : null,
    };
    emit(o.json ? 'json' : o.output, report, () => renderReport(report));
  });
}
