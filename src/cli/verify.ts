import type { Command } from 'commander';
import { readCertificateFile, readSource } from '../ca/sources.js';
import type { ChainResult } from '../pki/chain.js';
import { verifyChain } from '../pki/chain.js';
import { describeIdentity, renderIdentity } from '../pki/describe.js';
import { invalid } from '../pki/errors.js';
import { emit, withOutput } from './output.js';

interface VerifyOptions {
  root: string;
  ca?: boolean;
  output: string;
}

export interface VerifyCheck {
  name: string;
  ok: boolean;
  message: string;
}

/** One check per certificate on the path, one for the trust anchor, one per problem outside the path. */
export function verifyChecks(r: ChainResult): VerifyCheck[] {
  const checks: VerifyCheck[] = r.links.map((l) => ({
    name: `${l.role} #${l.index + 1} ${l.label}`,
    ok: l.problems.length === 0,
    message: l.problems.length === 0 ? 'valid' : l.problems.join('; '),
  }));
  checks.push({
    name: 'trusted root',
    ok: r.anchor !== undefined,
    message: r.anchor ? `ends at root "${r.anchor.subject}" (${r.anchor.fingerprint256})` : 'the chain does not end at a trusted root',
  });
  const inLinks = new Set(r.links.flatMap((l) => l.problems));
  for (const p of r.problems.filter((x) => !inLinks.has(x) && x !== 'the chain does not end at a trusted root')) {
    checks.push({ name: 'path', ok: false, message: p });
  }
  return checks;
}

/** `meshca verify`: exit 0 only when the chain verifies to --root; every reason otherwise, exit 1. */
export function register(program: Command): void {
  const cmd = program
    .command('verify')
    .description('verify a certificate chain against a root; exits 1 and lists every reason when it does not verify')
    .argument('<source>', 'chain file (leaf first), bundle directory, Secret manifest or proxy-config secret output')
    .requiredOption('--root <file>', 'trusted root certificate(s), PEM')
    .option('--ca', 'the chain starts with a CA (a plugin-CA bundle) rather than a workload certificate');
  withOutput(cmd).action((path: string, o: VerifyOptions) => {
    const roots = readCertificateFile(o.root, 'root file');
    const src = readSource(path);
    if (src.chain.length === 0) throw invalid('no_chain', `${path} holds no certificate chain to verify`);
    // Workload chains must start with an end entity; a plugin-CA bundle starts with its CA.
    const r = verifyChain(src.chain, { now: new Date(), roots, leafIsEndEntity: !(o.ca || src.caBundle) });
    const identity = describeIdentity(src.chain[0].ext.san);
    const checks = verifyChecks(r);
    const doc = {
      ok: r.ok,
      source: path,
      root: r.anchor ? { subject: r.anchor.subject, fingerprintSha256: r.anchor.fingerprint256 } : null,
      identity,
      checks,
      problems: r.problems,
    };
    if (!r.ok) {
      process.stderr.write(`meshca: ${path} does not verify against ${o.root}:\n${r.problems.map((p) => `  - ${p}`).join('\n')}\n`);
      process.exitCode = 1;
      // The failure is on stderr already; only machine-readable output repeats it on stdout.
      if (o.output === 'table') return;
    }
    emit(o.output, doc, (wide) => {
      const checkLines = wide ? checks.map((c) => `  ${c.ok ? 'ok  ' : 'FAIL'}  ${c.name}: ${c.message}\n`).join('') : '';
      if (!r.ok) return checkLines;
      return (
        `OK: ${path}: chain of ${r.path.length} certificate(s) verifies to root "${r.anchor!.subject}" (${r.anchor!.fingerprint256})\n` +
        `${renderIdentity(identity)}\n${checkLines}`
      );
    });
  });
}
