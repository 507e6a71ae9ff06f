import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Authority } from '../ca/authority.js';
import { CaState } from '../ca/state.js';
import type { ServeConfig } from '../config/index.js';
import { LeaseElector } from '../leader/lease.js';
import { KubeClient } from './client.js';
import { IstioPublisher } from './istio-publisher.js';
import { KubeSecretSink } from './secret-sink.js';
import { CsrSignerController } from './signer-controller.js';
import { SharedCacerts } from './shared-cacerts.js';
import { SecretStateBackend } from './state-secret.js';
import type { Leadership } from '../leader/index.js';
import { leadershipOf } from '../leader/sole.js';
import type { Progress } from '../util/progress.js';

/**
 * What `meshca serve` does in Kubernetes, kept out of startServer: the CA state in a
 * Secret before bootstrap, and after it the leader-only tasks (CSR signer controller, Istio
 * Secrets) behind a LeaderElector. The RA path (upstream k8s-csr) is an upstream and goes through
 * ca/material/upstream.ts like any other.
 */

type Deps = { log: Logger; now: () => Date; passphrase?: string; progress?: Progress };

/** The namespace meshca keeps its own objects in. */
export function ownNamespace(config: ServeConfig, client: KubeClient): string {
  return config.k8sNamespace ?? client.namespace;
}

/**
 * stateBackend secret: fills the state directory from the Secret (creating root and intermediate
 * and the Secret on the very first start, the first replica to save winning a race), so that
 * bootstrap then finds everything in place. A no-op for the directory backend.
 */
export async function prepareKubernetesState(config: ServeConfig, d: Deps): Promise<void> {
  if (config.stateBackend !== 'secret') return;
  const client = await KubeClient.load({ kubeconfig: config.kubeconfig });
  const backend = new SecretStateBackend(client, { namespace: ownNamespace(config, client), name: config.stateSecret });
  const now = d.now();
  const init = (dir: string) => {
    const state = new CaState(dir, { passphrase: d.passphrase, progress: d.progress });
    // A root left in the directory (the Secret was deleted) is saved, not replaced by a new one.
    if (!state.hasRoot())
      state.initRoot({ alg: config.keyAlgorithm, subject: { organization: [config.trustDomain] }, days: config.rootDays, now });
    if (!state.hasCluster(config.cluster))
      state.createIntermediate(config.cluster, { alg: config.keyAlgorithm, days: config.intermediateDays, now });
  };
  const how = await backend.prepare(config.dir, init);
  const state = new CaState(config.dir, { passphrase: d.passphrase, progress: d.progress });
  if (!state.hasCluster(config.cluster)) {
    // The root came from the Secret but this cluster is new: its intermediate is made here and shared.
    state.createIntermediate(config.cluster, { alg: config.keyAlgorithm, days: config.intermediateDays, now });
    await backend.save(config.dir);
    d.log.info(
      { cluster: config.cluster, secret: backend.description },
      'created the cluster intermediate and saved it to the state secret',
    );
  }
  d.log.info(
    { secret: backend.description, outcome: how },
    how === 'created' ? 'created the CA state and saved it to the state secret' : 'loaded the CA state from the state secret',
  );
}

/** stateBackend secret: where the leader's per-cluster bundles are shared with the next leader. */
export async function sharedCacertsFor(config: ServeConfig): Promise<SharedCacerts | undefined> {
  if (config.stateBackend !== 'secret') return undefined;
  const client = await KubeClient.load({ kubeconfig: config.kubeconfig });
  return new SharedCacerts(client, { namespace: ownNamespace(config, client), name: config.stateSecret });
}

/**
 * leaderElection: a coordination.k8s.io Lease decides which replica runs the controllers (all
 * replicas serve gRPC). Undefined when not configured: the server then leads alone.
 */
export async function kubernetesLeadership(config: ServeConfig, d: Omit<Deps, 'passphrase'>): Promise<Leadership | undefined> {
  if (!config.leaderElection) return undefined;
  const { elector, leadership } = leaseElection(config, d, await KubeClient.load({ kubeconfig: config.kubeconfig }));
  await elector.start();
  return leadership;
}

/** The Lease elector of this replica, not started (callers register their leader tasks first). */
export function leaseElection(
  config: ServeConfig,
  d: Omit<Deps, 'passphrase'>,
  client: KubeClient,
): { elector: LeaseElector; leadership: Leadership } {
  const identity = config.podName ?? process.env.HOSTNAME ?? hostname();
  const log = d.log.child({ component: 'leader' });
  const elector = new LeaseElector({
    client,
    namespace: ownNamespace(config, client),
    name: config.leaseName,
    identity,
    leaseDurationMs: config.leaseDuration * 1000,
    renewDeadlineMs: config.leaseRenewDeadline * 1000,
    retryPeriodMs: config.leaseRetryPeriod * 1000,
    now: d.now,
    log,
  });
  const leadership = leadershipOf(elector, identity, d.now);
  elector.onStoppedLeading(() => log.warn({ identity }, 'not leading: leader-only tasks stopped'));
  return { elector, leadership };
}

/**
 * Registers the leader-only tasks the configuration asks for (CSR signer controller, Istio
 * Secrets) on the server's leadership; they run while it leads and stop when the term's signal
 * aborts. Loads nothing when none is asked for.
 */
export async function startKubernetesControllers(
  config: ServeConfig,
  d: Omit<Deps, 'passphrase'> & { authority: Authority; leader: Pick<Leadership, 'onLeader'> },
): Promise<void> {
  if (config.signerNames.length === 0 && !config.publishCacerts && !config.publishIstiodTls) return;
  const client = await KubeClient.load({ kubeconfig: config.kubeconfig });
  const log = d.log.child({ component: 'k8s' });
  const tasks: Record<string, (signal: AbortSignal) => Promise<void>> = {};
  if (config.signerNames.length > 0) {
    const ctl = new CsrSignerController({
      client,
      signerNames: config.signerNames,
      signer: () => d.authority.signer,
      policy: {
        defaultTtlSeconds: config.defaultTtl,
        maxTtlSeconds: config.maxTtl,
        trustDomains: [config.trustDomain, ...config.trustDomainAliases],
      },
      now: d.now,
      log,
    });
    tasks.signer = (signal) => ctl.run(signal);
  }
  if (config.publishCacerts || config.publishIstiodTls) {
    const publisher = new IstioPublisher({
      sink: new KubeSecretSink({ client, override: config.secretOverride }),
      client,
      namespace: config.istioNamespace,
      material: () => ({ signer: d.authority.signer, roots: d.authority.roots }),
      cacerts: config.publishCacerts,
      istiod: config.publishIstiodTls ? { sans: config.istiodSans, ttlSeconds: config.servingTtl } : undefined,
      now: d.now,
      log,
    });
    tasks.istio = (signal) => publisher.run(signal);
  }
  d.leader.onLeader((signal) => {
    for (const [name, task] of Object.entries(tasks)) {
      task(signal).catch((e: unknown) => log.error({ task: name, err: e }, 'leader task failed; it restarts at the next term'));
    }
  });
  log.info({ tasks: Object.keys(tasks) }, 'kubernetes controllers registered (they run while this replica leads)');
}
