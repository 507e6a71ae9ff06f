import type { Command } from 'commander';
import { readCertificateFile, readSource } from '../ca/sources.js';
import { bundleFindings } from '../doctor/bundle-checks.js';
import { report, type DoctorReport, type Finding } from '../doctor/findings.js';
import { probeServed } from '../doctor/served.js';
import { servedFindings } from '../doctor/served-checks.js';
import { stateFindings } from '../doctor/state-checks.js';
import { readStateSnapshot } from '../doctor/state-read.js';
import { invalid } from '../pki/errors.js';
import { existingStateDir, parseDuration, withDir } from './options.js';
import { emit, withOutput } from './output.js';
import { parseAt } from './reconcile.js';

interface DoctorOptions {
  dir?: string;
  caAddr?: string;
  caRoot?: string;
  caServerName: string;
  httpAddr?: string;
  tokenFile?: string;
  trustDomain: string;
  root?: string;
  at?: string;
  renewBefore?: string;
  output: string;
}

const MARK: Record<Finding['severity'], string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' };

function render(r: DoctorReport): string {
  const lines = r.findings.map((f) => `${MARK[f.severity]}  ${f.check}: ${f.message}\n${f.fix ? `      fix: ${f.fix}\n` : ''}`);
  const s = r.summary;
  lines.push(
    `${r.ok ? 'OK' : 'PROBLEMS'}: ${s.fail} failed, ${s.warn} warning(s), ${s.ok} ok (${r.mode === 'state' ? 'state directory' : r.mode === 'served' ? 'served CA' : 'sources'} ${r.target})\n`,
  );
  return lines.join('');
}

async function run(sources: string[], o: DoctorOptions): Promise<DoctorReport> {
  const now = parseAt(o.at);
  const renewBeforeSeconds = o.renewBefore === undefined ? undefined : parseDuration(o.renewBefore, '--renew-before');
  if (sources.length > 0) {
    if (o.caAddr || o.dir) throw invalid('bad_args', 'give SOURCES, --ca-addr or --dir: one thing to check at a time');
    const expected = o.root ? { roots: readCertificateFile(o.root, '--root'), file: o.root } : undefined;
    const read = sources.map((p) => readSource(p));
    return report('bundles', sources.join(' '), now, bundleFindings(read, { now, expected, renewBeforeSeconds }));
  }
  if (o.root)
    throw invalid('bad_args', '--root goes with SOURCES (bundles, Secret manifests, proxy secrets); use --ca-root with --ca-addr');
  if (o.caAddr) {
    if (o.dir) throw invalid('bad_args', 'give --ca-addr or --dir, not both: one thing to check at a time');
    if (!o.caRoot) throw invalid('bad_flag', '--ca-addr needs --ca-root FILE: the root the CA must chain to');
    const caRoots = readCertificateFile(o.caRoot, '--ca-root');
    const obs = await probeServed({
      caAddr: o.caAddr,
      caRootFile: o.caRoot,
      caRoots,
      serverName: o.caServerName,
      httpAddr: o.httpAddr,
      tokenFile: o.tokenFile,
      trustDomain: o.trustDomain,
      timeoutMs: 10_000,
    });
    return report('served', o.caAddr, now, servedFindings(obs, now));
  }
  if (o.caRoot || o.httpAddr || o.tokenFile) throw invalid('bad_flag', '--ca-root, --http-addr and --token-file go with --ca-addr');
  const snap = await readStateSnapshot(existingStateDir(o.dir), process.env.MESHCA_KEY_PASSPHRASE);
  return report('state', snap.dir, now, stateFindings(snap, { now, renewBeforeSeconds }));
}

/** `meshca doctor`: checks a state directory, a served CA, or bundles and proxy secrets; says what is wrong and what fixes it. */
export function register(program: Command): void {
  const cmd = program
    .command('doctor')
    .description(
      'check a state directory, a served CA (--ca-addr) or cluster bundles and proxy secrets; print each problem and the command that fixes it; exits 1 on a problem',
    )
    .argument('[sources...]', 'bundle directories, cacerts Secret manifests or `istioctl proxy-config secret` output to check together')
    .option('--root <file>', 'with SOURCES: the root every source must lead to')
    .option('--ca-addr <host:port>', 'check the CA served at this gRPC address (TLS)')
    .option('--ca-root <file>', "with --ca-addr: the root(s) the CA's serving certificate must chain to")
    .option('--ca-server-name <name>', 'with --ca-addr: the name clients check in the serving certificate', 'istiod.istio-system.svc')
    .option('--http-addr <host:port>', "with --ca-addr: the CA's HTTP address, for /readyz, its trust bundle and its clock")
    .option('--token-file <file>', 'with --ca-addr: get a test certificate with this token (`meshca token` makes one) and verify it')
    .option('--trust-domain <domain>', 'with --token-file: trust domain of the test identity', 'cluster.local')
    .option('--at <time>', 'check as of this time: ISO 8601 or +DURATION (e.g. +30d: what needs renewal within 30 days)')
    .option(
      '--renew-before <duration>',
      "renewal lead time of intermediates no RootTrustPolicy owns (default: renewBefore of the state directory's meshca.yaml, else a third of their lifetime)",
    )
    .addHelpText(
      'after',
      '\nExamples:\n  meshca doctor --dir ./.meshca\n  meshca doctor --at +30d\n  meshca doctor --ca-addr 127.0.0.1:15012 --ca-root .meshca/trust-bundle.pem --http-addr 127.0.0.1:15014\n  meshca doctor --root root-cert.pem ./east-cacerts ./west-cacerts proxy_secret.json\n',
    );
  withOutput(withDir(cmd)).action(async (sources: string[], o: DoctorOptions) => {
    const r = await run(sources, o);
    if (!r.ok) {
      process.stderr.write(`meshca: doctor found ${r.summary.fail} problem(s) in ${r.target}\n`);
      process.exitCode = 1;
    }
    emit(o.output, r, () => render(r));
  });
}
