import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { runAgent, type AgentEvent } from '../agent/agent.js';
import { grpcCaClient } from '../agent/client.js';
import { issueOnce, loadCertDir, type AgentConfig, type HeldCertificate } from '../agent/issue.js';
import { formatDuration } from '../config/duration.js';
import { humanDuration } from '../resources/duration.js';
import { caTrust } from '../agent/trust.js';
import { DEFAULT_RENEW_AT } from '../agent/schedule.js';
import { MeshcaError, invalid } from '../errors.js';
import { DEFAULT_KEY_ALGORITHM, parseKeyAlgorithm } from '../pki/keys.js';
import { parseSpiffeId, validateTrustDomain } from '../pki/spiffe.js';
import { parseDuration } from './options.js';
import { renamedFlag } from './renamed.js';

interface AgentFlags {
  caAddr: string;
  caRoot?: string;
  caServerName: string;
  tokenFile?: string;
  certDir?: string;
  out: string;
  keyAlgorithm: string;
  once?: boolean;
  renewAt: string;
  ttl?: string;
  trustDomain: string;
  clusterId?: string;
  workloadName?: string;
  plaintext?: boolean;
  identity?: string;
}

function toConfig(f: AgentFlags): AgentConfig {
  if (!f.tokenFile === !f.certDir) {
    throw invalid('bad_flag', 'give exactly one of --token-file (first issuance) or --cert-dir (renew with an existing certificate)');
  }
  const renewAt = Number(f.renewAt);
  if (!(renewAt > 0 && renewAt < 1)) throw invalid('bad_flag', `--renew-at must be a fraction between 0 and 1, got "${f.renewAt}"`);
  validateTrustDomain(f.trustDomain);
  return {
    outDir: resolve(f.out),
    keyAlgorithm: parseKeyAlgorithm(f.keyAlgorithm),
    trustDomain: f.trustDomain,
    renewAt,
    ttlSeconds: f.ttl === undefined ? undefined : Math.max(1, Math.round(parseDuration(f.ttl, '--ttl'))),
    tokenFile: f.tokenFile && resolve(f.tokenFile),
    certDir: f.certDir && resolve(f.certDir),
    clusterId: f.clusterId,
    workloadName: f.workloadName,
    identity: f.identity === undefined ? undefined : (parseSpiffeId(f.identity), f.identity),
  };
}

function readRoot(path: string | undefined, plaintext: boolean | undefined): string | undefined {
  if (plaintext) return undefined;
  if (!path) throw invalid('bad_flag', '--ca-root is required to verify the CA (or --plaintext for local testing)');
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new MeshcaError('not_found', 'no_ca_root', `cannot read --ca-root ${path}: ${(e as Error).message}`);
  }
}

function describe(e: AgentEvent): string {
  switch (e.type) {
    case 'issued': {
      const l = e.held.leaf;
      return `issued ${e.held.identity.spiffeId} serial=${l.serialHex} notAfter=${l.notAfter.toISOString()} auth=${e.auth}; next renewal at ${e.nextRenewal.toISOString()}`;
    }
    case 'failed': {
      const c = e.current?.leaf.notAfter;
      const serving = !c
        ? 'no certificate yet'
        : c.getTime() > Date.now()
          ? `still serving the current certificate until ${c.toISOString()}`
          : `the current certificate expired at ${c.toISOString()}`;
      return `issuance failed (${e.failures} in a row): ${e.error.message}; retrying at ${e.retryAt.toISOString()}; ${serving}`;
    }
    case 'stopped':
      return 'stopped';
  }
}

let warnedShorter = false;
/** Once per process: a CA (RA mode: PCA's 7-day limit) may grant less than --ttl asked for. */
function warnIfShorter(cfg: AgentConfig, held: HeldCertificate): void {
  if (warnedShorter || cfg.ttlSeconds === undefined) return;
  const granted = Math.round((held.leaf.notAfter.getTime() - held.leaf.notBefore.getTime()) / 1000);
  // A minute of slack: CAs backdate notBefore and round validity.
  if (granted >= cfg.ttlSeconds - 60) return;
  warnedShorter = true;
  process.stderr.write(
    `meshca agent: warning: requested --ttl ${formatDuration(cfg.ttlSeconds)} but the CA granted about ${humanDuration(granted * 1000)} (notAfter ${held.leaf.notAfter.toISOString()})\n`,
  );
}

async function action(f: AgentFlags): Promise<void> {
  const cfg = toConfig(f);
  // Checked once up front so that a bad --ca-root fails at start; then re-read with the roots of the last answer (agent/trust.ts).
  const initialRoot = readRoot(f.caRoot, f.plaintext);
  const client = grpcCaClient({
    address: f.caAddr,
    rootPem: initialRoot === undefined ? undefined : caTrust(resolve(f.caRoot!), cfg.outDir),
    serverName: f.caServerName,
    plaintext: f.plaintext,
    clusterId: f.clusterId,
    rootSource: f.caRoot && resolve(f.caRoot),
  });
  if (f.once) {
    const current = cfg.certDir ? loadCertDir(cfg.certDir) : undefined;
    const { held } = await issueOnce(cfg, { client, now: Date.now }, current);
    warnIfShorter(cfg, held);
    process.stdout.write(`issued ${held.identity.spiffeId} serial=${held.leaf.serialHex} notAfter=${held.leaf.notAfter.toISOString()}\n`);
    return;
  }
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    const onEvent = (e: AgentEvent): void => {
      process.stderr.write(`meshca agent: ${describe(e)}\n`);
      if (e.type === 'issued') warnIfShorter(cfg, e.held);
    };
    await runAgent(cfg, { client, onEvent }, stop.signal);
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

export function register(program: Command): void {
  const cmd = program
    .command('agent')
    .description('Workload agent (like istio-agent): get a certificate for the identity a token grants, write it, keep it renewed')
    .requiredOption('--ca-addr <host:port>', 'address of the Istio-compatible CA (e.g. 127.0.0.1:15012)')
    .option('--ca-root <file>', "PEM root(s) the CA's serving certificate must chain to: serve's DIR/trust-bundle.pem")
    .option('--ca-server-name <name>', "name to verify in the CA's certificate", 'istiod.istio-system.svc')
    .option('--token-file <file>', 'service-account JWT (re-read on every request, as projected tokens rotate)')
    .option('--cert-dir <dir>', 'renew the certificate in this directory (cert-chain.pem, key.pem) over mTLS, without a token')
    .requiredOption('--out <dir>', 'where to write cert-chain.pem, key.pem (0600) and root-cert.pem')
    .addOption(
      new Option('--key-algorithm <alg>', 'key algorithm of the workload key')
        .choices(['ec-p256', 'rsa-2048', 'ec-p384', 'rsa-3072', 'rsa-4096'])
        .default(DEFAULT_KEY_ALGORITHM),
    )
    .option('--once', "issue one certificate, print a summary and exit (non-zero with the CA's message on failure)")
    .option('--renew-at <fraction>', 'renew after this fraction of the lifetime (±10% jitter)', String(DEFAULT_RENEW_AT))
    .option('--ttl <duration>', "requested certificate lifetime, e.g. 1h (validity_duration; default: the CA's)")
    .option('--identity <spiffe-id>', "SPIFFE ID to request (default: the token's service account, or the current certificate's)")
    .option('--trust-domain <domain>', 'SPIFFE trust domain of the identity', 'cluster.local')
    .option('--cluster-id <id>', 'cluster name sent as the ClusterID header and metadata')
    .option('--workload-name <name>', 'sent as WorkloadName metadata')
    .option('--plaintext', 'no TLS to the CA (local testing only: the token travels in clear)');
  renamedFlag(cmd, '--key-algorithm', '--key');
  cmd.action(action);
}
