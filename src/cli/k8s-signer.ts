import { hostname } from 'node:os';
import { Option, type Command } from 'commander';
import { validateClusterName } from '../ca/state.js';
import { KubeClient } from '../k8s/client.js';
import { defaultKubeconfigLabel } from '../k8s/kubeconfig-source.js';
import { checkCsrAccess } from '../k8s/preflight.js';
import { CsrSignerController } from '../k8s/signer-controller.js';
import { SoleLeader, runWhileLeading, type LeaderElector } from '../leader/index.js';
import { LeaseElector } from '../leader/lease.js';
import { DEFAULT_KEY_ALGORITHM, KEY_ALGORITHMS, parseKeyAlgorithm, type KeyAlgorithm } from '../pki/keys.js';
import { createLogger } from '../server/index.js';
import { LOG_FORMATS } from '../server/log-text.js';
import { openStateToCreate, parseDuration, parseIntOption, withDir } from './options.js';
import { logProgress } from './progress.js';
import { renamedFlag } from './renamed.js';

interface Options {
  dir?: string;
  signerNames: string[];
  cluster: string;
  kubeconfig?: string;
  trustDomain: string;
  defaultTtl: number;
  maxTtl: number;
  keyAlgorithm: KeyAlgorithm;
  intermediateDays: number;
  leaderElection?: boolean;
  leaseName: string;
  k8sNamespace?: string;
  podName?: string;
  logLevel: string;
  logFormat?: string;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [
    ...(previous ?? []),
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
}

/**
 * `meshca k8s-signer`: only the Kubernetes CSR signer (the custom CA controller of Istio's
 * "custom CA integration using Kubernetes CSR"), signing approved CSRs for the given signer names
 * with the cluster intermediate of the state directory (created on first start, like serve).
 * Prints one JSON line on stdout once it watches; logs go to stderr.
 */
export function register(program: Command): void {
  const cmd = program
    .command('k8s-signer')
    .description('sign approved Kubernetes CertificateSigningRequests for the given signer names with the cluster intermediate')
    .requiredOption('--signer-names <names>', 'spec.signerName(s) to sign for, e.g. example.com/foo (comma-separated; repeatable)', collect)
    .option('--cluster <name>', 'cluster whose intermediate signs', 'default')
    .option('--kubeconfig <path>', 'kubeconfig path or "in-cluster" (default: $KUBECONFIG, ~/.kube/config, or in-cluster)')
    .option('--trust-domain <td>', 'trust domain a SPIFFE URI SAN must be in', 'cluster.local')
    .addOption(
      new Option('--default-ttl <duration>', 'lifetime when a CSR has no expirationSeconds')
        .argParser((v) => parseDuration(v, '--default-ttl'))
        .default(86_400, '24h'),
    )
    .addOption(
      new Option('--max-ttl <duration>', 'cap on expirationSeconds')
        .argParser((v) => parseDuration(v, '--max-ttl'))
        .default(90 * 86_400, '90d'),
    )
    .addOption(
      new Option('--key-algorithm <alg>', `key algorithm of a root and intermediate created on first start (${KEY_ALGORITHMS.join(', ')})`)
        .argParser(parseKeyAlgorithm)
        .default(DEFAULT_KEY_ALGORITHM),
    )
    .option(
      '--intermediate-days <n>',
      'lifetime in days of an intermediate created on first start',
      parseIntOption('--intermediate-days', 1, 36500),
      365,
    )
    .option('--leader-election', 'sign only while holding a Lease (run several replicas)')
    .option('--lease-name <name>', 'leader election Lease', 'meshca-k8s-signer')
    .option('--k8s-namespace <ns>', "namespace of the Lease (default: the kubeconfig context's or the pod's)")
    .option('--pod-name <name>', 'identity in the Lease (default: $HOSTNAME)')
    .option('--log-level <level>', 'log level', 'info')
    .addOption(
      new Option('--log-format <format>', 'log format on stderr (default: text on a terminal, json otherwise)').choices(LOG_FORMATS),
    );
  renamedFlag(cmd, '--signer-names', '--signer-name');
  renamedFlag(cmd, '--key-algorithm', '--key');
  renamedFlag(cmd, '--k8s-namespace', '--namespace');
  withDir(cmd).action(async (o: Options) => {
    const log = createLogger(o.logLevel, o.logFormat);
    validateClusterName(o.cluster);
    // Reach the API server before creating anything: a wrong kubeconfig must not leave a root behind.
    const client = await KubeClient.load({ kubeconfig: o.kubeconfig });
    await checkCsrAccess(client, o.kubeconfig ?? defaultKubeconfigLabel());
    const { state, announce } = openStateToCreate(o, logProgress(log));
    const now = new Date();
    let created = false;
    if (!state.hasRoot()) {
      state.initRoot({ alg: o.keyAlgorithm, subject: { organization: [o.trustDomain] }, now });
      created = true;
    }
    if (!state.hasCluster(o.cluster)) {
      state.createIntermediate(o.cluster, { alg: o.keyAlgorithm, days: o.intermediateDays, now });
      created = true;
    }
    announce();
    // Loaded once to fail early on a broken state; read again at each signature (a replaced intermediate takes effect).
    const first = state.signer(o.cluster);
    const controller = new CsrSignerController({
      client,
      signerNames: o.signerNames,
      signer: () => state.signer(o.cluster),
      policy: { defaultTtlSeconds: Math.min(o.defaultTtl, o.maxTtl), maxTtlSeconds: o.maxTtl, trustDomains: [o.trustDomain] },
      log,
    });
    const identity = o.podName ?? process.env.HOSTNAME ?? hostname();
    const elector: LeaderElector = o.leaderElection
      ? new LeaseElector({ client, namespace: o.k8sNamespace ?? client.namespace, name: o.leaseName, identity, log })
      : new SoleLeader(identity);
    runWhileLeading(elector, { signer: (signal) => controller.run(signal) }, log);
    const stopped = new Promise<string>((resolve) => {
      process.once('SIGTERM', () => resolve('SIGTERM'));
      process.once('SIGINT', () => resolve('SIGINT'));
    });
    await elector.start();
    process.stdout.write(
      `${JSON.stringify({ event: 'signing', signerNames: o.signerNames, issuer: first.cert.subject, rootFile: state.rootCertPath, created, leaderElection: Boolean(o.leaderElection), identity })}\n`,
    );
    log.info({ signal: await stopped }, 'shutting down');
    await elector.stop();
  });
}
