import type { Server as HttpServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { pino, type Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { LocalTokenIssuer, createAuthenticator } from '../auth/index.js';
import { Authority, type SigningMaterial } from '../ca/authority.js';
import { bootstrapCa } from '../ca/bootstrap.js';
import { IssuanceService } from '../ca/issuance.js';
import { RateLimiter } from '../ca/rate-limit.js';
import { CaState, signerFromBundle } from '../ca/state.js';
import { resolveConfig, type ConfigInput, type ServeConfig } from '../config/index.js';
import { MeshcaError } from '../pki/errors.js';
// HA and the dashboard (issue 8): store choice, replicated CA, leadership, durable audit.
import { DurableIssuanceService } from '../ca/durable-issuance.js';
import { auditDurableOf } from '../config/store.js';
import type { Store } from '../store/index.js';
import { openStore } from '../store/open.js';
import { SqliteStore } from '../store/sqlite/index.js';
import type { AuditEntry } from '../store/index.js';
import { isReplicated, soleLeadership, wireReplicated, type Leadership } from './ha.js';
import { relayAudit } from './audit-relay.js';
import { auditSetting, withoutAudit, type AuditSetting } from './audit-setting.js';
import { dashboardFor } from './http/dashboard/wiring.js';
import { createH2GrpcServer } from './grpc/h2.js';
import { METHOD_PATH } from './grpc/proto.js';
import { h2CreateCertificateHandler } from './grpc/service.js';
import { createHttpServer } from './http/index.js';
import { ServerMetrics } from './metrics.js';
import { ServingTls } from './grpc/serving-tls.js';
import type { RemoteServingTls } from './remote-serving-tls.js';
import { servePcaApi } from './serve-pca-api.js';
import { withRegistries } from './upstream-metrics.js';
import { wireUpstream } from './upstream-wiring.js';
// Issue 6: the served bundle reloads without a restart; the declarative controllers run on the leader.
import { wireControllers } from './controllers-wiring.js';
import { ClusterBundleReload } from './reload.js';
// Kubernetes (issue 7): CA state in a Secret, Lease leader election, CSR signer and Istio secrets.
import { kubernetesLeadership, prepareKubernetesState, startKubernetesControllers } from '../k8s/serve.js';

export interface StartOptions {
  logger?: Logger;
  /** Passphrase of the keys at rest; default $MESHCA_KEY_PASSPHRASE. */
  passphrase?: string;
  now?: () => Date;
  /**
   * single: gRPC and HTTP in this process (default). With several worker processes (src/server/
   * cluster.ts) the primary serves HTTP and aggregates the workers' metrics, and each worker serves
   * gRPC on the shared port.
   */
  role?: ServerRole;
  /** The primary calls this after the upstream renewed the intermediate (cluster.ts tells the workers to reload). */
  onCaChanged?: () => void;
  /**
   * Controllers that must run on one replica only: called with a signal each time this process
   * becomes leader; the signal aborts when leadership ends (always leader with SQLite; with
   * PostgreSQL, the holder of the advisory lock). More can be added with RunningServer.onLeader.
   */
  onLeader?: (signal: AbortSignal) => void;
  /**
   * Workers of the h2 transports: take gRPC connections the primary accepted and handed over
   * (RunningServer.acceptConnection) instead of listening, so the primary can balance them.
   */
  grpcHandedOff?: boolean;
  /** More metrics for this process's /metrics (the primary adds its connection balancer's). */
  metricsRegistries?: Registry[];
}

export type ServerRole = 'single' | 'primary' | 'worker';

export interface RunningServer {
  config: ServeConfig;
  grpcAddress: string;
  httpAddress: string;
  grpcPort: number;
  httpPort: number;
  rootPem: string;
  rootFingerprint: string;
  createdRoot: boolean;
  createdIntermediate: boolean;
  /** Mints a local-issuer token (what `meshca token` prints); for tests and benchmarks. */
  issueToken(r: { namespace: string; serviceAccount: string; ttlSeconds?: number; audience?: string[] }): Promise<string>;
  /** Stops accepting requests, lets in-flight ones finish, writes every queued audit row. */
  close(): Promise<void>;
  /** URL of the PCA-compatible API (`--pca-api`), when served. */
  pcaApiUrl?: string;
  /** Workers: reload the intermediate the primary renewed and persisted. */
  reloadCa?(): void;
  /** Runs cb(signal) whenever this process leads (see StartOptions.onLeader). */
  onLeader(cb: (signal: AbortSignal) => void): void;
  isLeader(): boolean;
  /** Queues an audit row in this process's store (the primary writes its workers' rows: audit-relay.ts). */
  appendAudit(entry: AuditEntry): void;
  /** With StartOptions.grpcHandedOff: serves a connection accepted by another process. */
  acceptConnection?(socket: Socket): void;
}

export function createLogger(level: string): Logger {
  // Logs go to stderr so that stdout carries only the one-line "listening" record a script parses.
  return pino({ level, base: { name: 'meshca' } }, pino.destination({ dest: 2, sync: true }));
}

/** The one refusal for a gRPC address that cannot be bound (here, and by the primary of --workers). */
export function grpcBindError(addr: string, err: Error): MeshcaError {
  return new MeshcaError('unavailable', 'bind_failed', `cannot listen for gRPC on ${addr}: ${err.message}`, { cause: err });
}

export function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(addr.slice(i + 1)) };
}

export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Starts the CA: state directory and store, CA bootstrap (first start creates root and
 * intermediate, later starts reuse them), authenticator, gRPC (Istio CA API) and HTTP listeners.
 */
export async function startServer(input: ServeConfig | (ConfigInput & { dir: string }), o: StartOptions = {}): Promise<RunningServer> {
  // loadConfig adds where the file came from; it is not a setting.
  const { configFile: _file, ...settings } = input as ServeConfig & { configFile?: string };
  const config = resolveConfig(settings as ConfigInput & { dir: string });
  const log = o.logger ?? createLogger(config.logLevel);
  const now = o.now ?? (() => new Date());
  const passphrase = o.passphrase ?? (process.env.MESHCA_KEY_PASSPHRASE || undefined);
  // Read before anything is opened: a bad value leaves nothing behind.
  const audit = auditSetting();
  let store: Store = await openStore(config, (e) => log.error({ err: e }, 'audit store background work failed (unwritten audit rows stay queued)'));
  // A worker on the embedded store hands its audit rows to the primary, the one SQLite writer.
  if (o.role === 'worker' && typeof process.send === 'function' && !isReplicated(store)) store = relayAudit(store, process.send.bind(process), { flushMs: config.auditFlushMs, batchSize: config.auditBatchSize });
  // The process that writes SQLite checkpoints its WAL from a worker thread (started once the WAL is large), never on the event loop.
  else if (store instanceof SqliteStore) store.checkpointInBackground();
  if (audit !== 'on') {
    store = withoutAudit(store);
    log.warn({ audit }, 'issuances are NOT audited: a benchmark setting that measures what the audit costs, never for production');
  }
  const cleanup: (() => Promise<void> | void)[] = [() => store.close()];
  const closeAll = async () => {
    for (const f of cleanup.reverse()) await f();
  };
  try {
    return await start(config, store, log, now, passphrase, cleanup, closeAll, o.role ?? 'single', { ...o, audit });
  } catch (e) {
    await closeAll().catch(() => {});
    throw e;
  }
}

async function start(
  config: ServeConfig,
  store: Store,
  log: Logger,
  now: () => Date,
  passphrase: string | undefined,
  cleanup: (() => Promise<void> | void)[],
  closeAll: () => Promise<void>,
  role: ServerRole,
  o: Pick<StartOptions, 'onCaChanged' | 'onLeader' | 'grpcHandedOff' | 'metricsRegistries'> & { audit: AuditSetting },
): Promise<RunningServer> {
  const { onCaChanged, onLeader, grpcHandedOff = false, metricsRegistries = [], audit } = o;
  const state = new CaState(config.dir, { passphrase });
  // stateBackend secret: the state directory is filled from a Kubernetes Secret first (k8s/serve.ts).
  if (role !== 'worker') await prepareKubernetesState(config, { log, now, passphrase });
  // An upstream CA (files, AWS PCA) supplies the intermediate, or in RA mode every certificate: upstream-wiring.ts.
  const pcaApi = role === 'worker' ? undefined : servePcaApi(config);
  // With PostgreSQL the CA material lives in the database and a leader renews it: server/ha.ts.
  const ha = isReplicated(store) ? await wireReplicated({ config, store, log, now, passphrase, role }) : undefined;
  const up = ha ?? (config.upstream === 'local' ? undefined : await wireUpstream({ config, state, store, log, now, passphrase, role }));
  if (up) cleanup.push(() => up.close());
  const boot = up ? undefined : await bootstrapCa(state, store, { cluster: config.cluster, trustDomain: config.trustDomain, keyAlgorithm: config.keyAlgorithm, rootDays: config.rootDays, intermediateDays: config.intermediateDays, now: now() });
  if (boot?.createdRoot) log.info({ fingerprint: boot.bundle.roots[0].fingerprint256, dir: config.dir }, 'created a new root');
  if (boot?.createdIntermediate) log.info({ cluster: config.cluster }, 'created the cluster intermediate');
  if (boot?.rootReplaced) log.warn(boot.rootReplaced, 'the root differs from the one recorded at the last start (replaced by an import?)');
  // Workers reload only when the primary says so (cluster.ts), the primary and a single process watch the files.
  const bundleReload = boot && new ClusterBundleReload({ state, cluster: config.cluster, initial: boot.bundle, now, log, watchMarker: role !== 'worker' });
  if (bundleReload) cleanup.push(() => bundleReload.close());

  const policy = {
    trustDomain: config.trustDomain,
    trustDomainAliases: config.trustDomainAliases,
    defaultTtlSeconds: config.defaultTtl,
    maxTtlSeconds: config.maxTtl,
    maxCsrBytes: config.maxCsrBytes,
    impersonationAllow: config.impersonationAllow,
  };
  const authority = boot ? new Authority({ signer: signerFromBundle(boot.bundle), roots: boot.bundle.roots }, policy, now) : up!.createAuthority(policy, now);
  const local = await LocalTokenIssuer.open(store, { passphrase });
  const authenticator = await createAuthenticator({
    trustDomain: config.trustDomain,
    trustDomainAliases: config.trustDomainAliases,
    audience: config.audience,
    local: config.localTokens ? local : undefined,
    jwksFile: config.jwksFile,
    jwksIssuer: config.jwksIssuer,
    oidcIssuer: config.oidcIssuer,
    kubeconfig: config.kubeconfig,
    issuers: () => (up ? up.issuers() : (bundleReload?.issuers() ?? [authority.signer.cert.node])),
    now,
  });
  const metrics = new ServerMetrics();
  if (role === 'worker') {
    // A worker answers the primary's metric requests over the cluster IPC channel; prom-client
    // installs that listener when an AggregatorRegistry is constructed.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([metrics.registry]);
  }
  metrics.setHierarchy(config.cluster, [authority.signer.cert, ...authority.signer.chain], authority.roots);
  // auditDurable: answer only once the audit row is committed (ca/durable-issuance.ts).
  const Service = auditDurableOf(config) ? DurableIssuanceService : IssuanceService;
  const service = new Service({
    authenticator,
    authority,
    store,
    limiter: new RateLimiter(config.rateLimit, config.rateBurst),
    cluster: config.cluster,
    observer: metrics,
    workloadSigner: up?.workloadSigner,
    now,
    unauthenticatedAuditRate: config.unauthenticatedAuditRate,
    unauthenticatedAuditBurst: config.unauthenticatedAuditBurst,
  });
  // Pushed before the transports: cleanups run last first, so the summary is written after they stop.
  cleanup.push(() => service.close());

  let tls: ServingTls | RemoteServingTls | undefined;
  // A renewed intermediate (or a worker's reload of it): new requests sign with it, requests in flight
  // finish with the signer they already hold, and the serving certificate follows.
  const swapMaterial = (m: SigningMaterial): void => {
    authority.setMaterial(m);
    metrics.setHierarchy(config.cluster, [m.signer.cert, ...m.signer.chain], m.roots);
    try {
      if (tls instanceof ServingTls) tls.renew();
    } catch (e) {
      log.error({ err: e }, 'serving certificate from the new intermediate failed; the current one stays');
    }
    onCaChanged?.();
  };
  up?.onSwap(swapMaterial);
  bundleReload?.onSwap(swapMaterial);
  let grpcPort = 0;
  let acceptConnection: ((socket: Socket) => void) | undefined;
  if (role !== 'primary') {
    if (!config.plaintext) {
      const servingOptions = { sans: config.servingSans, ttlSeconds: config.servingTtl, now, log, onIssue: (c: { notAfter: Date }) => metrics.setServingExpiry(c.notAfter) };
      tls = up?.startServingTls ? await up.startServingTls(servingOptions) : new ServingTls(authority, servingOptions);
      cleanup.push(() => tls?.stop());
    }
    const gp = splitHostPort(config.grpcAddr);
    const bindError = (err: Error) => grpcBindError(config.grpcAddr, err);
    const m = tls?.material;
    const h2 = createH2GrpcServer({
      engine: config.grpcTransport === 'h2' ? 'frames' : 'node',
      routes: { [METHOD_PATH]: h2CreateCertificateHandler(service, log) },
      maxMessageBytes: Math.max(4 << 20, config.maxCsrBytes * 4),
      tls: m ? { cert: m.certChainPem, key: m.keyPem, ca: m.trustedCaPem } : undefined,
      onError: (e) => log.error({ err: e }, 'gRPC call failed'),
    });
    tls?.subscribe((n) => h2.updateTls({ cert: n.certChainPem, key: n.keyPem, ca: n.trustedCaPem }));
    if (grpcHandedOff) {
      // tls.Server (and node:http2's secure server) serve a socket emitted as 'connection'.
      acceptConnection = (socket) => h2.server.emit('connection', socket);
    } else {
      grpcPort = await h2.listen(gp.host, gp.port).catch((e: Error) => Promise.reject(bindError(e)));
    }
    cleanup.push(() => h2.close());
  }

  let httpPort = 0;
  const hp = splitHostPort(config.httpAddr);
  // Set once leadership is up (below); the dashboard may be asked before that.
  let leaderRef: Leadership | undefined;
  if (role !== 'worker') {
    const aggregator = role === 'primary' ? new AggregatorRegistry() : undefined;
    const http = createHttpServer({
      authority,
      store,
      registry: withRegistries(aggregator ? { metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType } : metrics.registry, [...(up?.metrics ? [up.metrics.registry] : []), ...metricsRegistries]),
      trustDomain: config.trustDomain,
      cluster: config.cluster,
      audit,
      serving: () => tls?.current,
      notReady: () => authority.notReadyReason(),
      readyDetail: up?.readyDetail && (() => ({ upstream: up.readyDetail!() })),
      now,
      log,
      // The operator dashboard at / (issue 8; http/dashboard/).
      dashboard: dashboardFor({ config, authority, store, state, role, now, leader: () => leaderRef, serving: () => tls?.current, ha, upstreamDetail: ha ? undefined : up?.readyDetail }),
    });
    await new Promise<void>((resolve, reject) => {
      http.once('error', (err) => reject(new MeshcaError('unavailable', 'bind_failed', `cannot listen for HTTP on ${config.httpAddr}: ${err.message}`, { cause: err })));
      http.listen(hp.port, hp.host, () => resolve());
    });
    cleanup.push(() => closeHttp(http));
    httpPort = (http.address() as AddressInfo).port;
  }
  let pcaApiUrl: string | undefined;
  if (pcaApi) {
    const api = await pcaApi.start(state, log);
    cleanup.push(() => api.close());
    pcaApiUrl = api.url;
  }

  // Leader-only controllers start once everything serves (issue 8; server/ha.ts).
  const leader: Leadership = ha?.leadership ?? (role !== 'worker' ? await kubernetesLeadership(config, { log, now }) : undefined) ?? (await soleLeadership(role, now));
  // First to run at shutdown: a leader steps down (and frees its lock for a follower) before draining.
  cleanup.push(() => leader.stop());
  leaderRef = leader;
  if (onLeader) leader.onLeader(onLeader);
  // Leader-only Kubernetes tasks: CSR signer controller, Istio secrets (issue 7; k8s/serve.ts).
  if (role !== 'worker') await startKubernetesControllers(config, { authority, log, now, leader });
  // Declarative controllers (issue 6; controllers-wiring.ts); a cacerts they write reloads at once.
  if (role !== 'worker' && config.controllers) {
    const controllers = wireControllers({ dir: config.dir, leader, log, now, passphrase, onCacertsWrite: (c) => void (c === config.cluster && bundleReload?.check()) });
    cleanup.push(() => controllers.close());
  }

  const grpcHost = splitHostPort(config.grpcAddr).host;
  const root = authority.roots[authority.roots.length - 1];
  let closing: Promise<void> | undefined;
  return {
    config,
    grpcPort,
    httpPort,
    grpcAddress: joinHostPort(grpcHost, grpcPort),
    httpAddress: joinHostPort(hp.host, httpPort),
    rootPem: root.pem,
    rootFingerprint: root.fingerprint256,
    createdRoot: boot?.createdRoot ?? ha?.createdRoot ?? false,
    createdIntermediate: boot?.createdIntermediate ?? up?.createdIntermediate ?? false,
    pcaApiUrl,
    reloadCa: up ? () => up.reload() : bundleReload && (() => void bundleReload.check()),
    issueToken: (r) => local.issue({ namespace: r.namespace, serviceAccount: r.serviceAccount, ttlSeconds: r.ttlSeconds ?? 3600, audience: r.audience ?? config.audience, now: now() }),
    close: () => (closing ??= closeAll()),
    onLeader: (cb) => leader.onLeader(cb),
    isLeader: () => leader.isLeader(),
    appendAudit: (e) => store.appendAudit(e),
    acceptConnection,
  };
}

function closeHttp(http: HttpServer): Promise<void> {
  return new Promise((resolve) => {
    http.close(() => resolve());
    http.closeIdleConnections();
  });
}
