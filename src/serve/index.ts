import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { LocalTokenIssuer, createAuthenticator, type Authenticator } from '../auth/index.js';
import type { Authority, Policy, SigningMaterial } from '../ca/authority.js';
import { DurableIssuanceService } from '../ca/durable-issuance.js';
import { IssuanceService } from '../ca/issuance.js';
import { openMaterialSource } from '../ca/material/open.js';
import type { MaterialSource } from '../ca/material/source.js';
import { RateLimiter } from '../ca/rate-limit.js';
import { publishTrustBundle } from '../ca/trust-bundle-file.js';
import { CaState } from '../ca/state.js';
import { resolveConfig, type ConfigInput, type ServeConfig } from '../config/index.js';
import { auditDurableOf } from '../config/store.js';
import { kubernetesLeadership, sharedCacertsFor, startKubernetesControllers } from '../k8s/serve.js';
import type { Leadership } from '../leader/index.js';
import { soleLeadership } from '../leader/sole.js';
import type { AuditEntry, Store } from '../store/index.js';
import type { AuditSetting } from './audit-setting.js';
import { wireControllers } from './controllers-wiring.js';
import { watchManifests, type ManifestsWatcher } from './manifests.js';
import { openServeStore } from './open-store.js';
import { createH2GrpcServer } from '../server/grpc/h2.js';
import { METHOD_PATH } from '../server/grpc/proto.js';
import { h2CreateCertificateHandler } from '../server/grpc/service.js';
import { ServingTls } from '../server/grpc/serving-tls.js';
import { dashboardFor } from '../server/http/dashboard/wiring.js';
import { createHttpServer } from '../server/http/index.js';
import { createLogger, grpcBindError, joinHostPort, listenHttp, splitHostPort } from '../server/listen.js';
import { probeListenAddresses } from '../server/probe.js';
import { ControlMetrics } from '../server/control-metrics.js';
import { ServerMetrics } from '../server/metrics.js';
import { planFor, type RolePlan, type ServerRole } from '../server/role.js';
import { servePcaApi } from '../server/serve-pca-api.js';
import { withRegistries } from '../server/upstream-metrics.js';
import type { Progress } from '../util/progress.js';

/**
 * The composition root of `meshca serve`: store -> material source -> authority -> issuance
 * service -> transports -> leadership. What signs is the material source's business
 * (ca/material/); what runs in this process is the role's plan (server/role.ts).
 */

export { createLogger, grpcBindError, joinHostPort, splitHostPort };
export type { ServerRole };

export interface StartOptions {
  logger?: Logger;
  /** Told of first-start steps that take seconds (an RSA-4096 root); `meshca serve` logs them. */
  progress?: Progress;
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
  /** Benchmarks only (bench/serve.ts): issuances not audited, to measure what the audit costs. Default on. */
  audit?: AuditSetting;
  /** Tests only: pause between minting and committing a replicated renewal, so that a kill can land there. */
  renewalPauseMs?: number;
}

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
  /** URL of the PCA-compatible API (`--pca-api-addr`), when served. */
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

/** Everything start() and its steps share; cleanups run last first. */
interface Ctx {
  config: ServeConfig;
  store: Store;
  log: Logger;
  now: () => Date;
  passphrase?: string;
  role: ServerRole;
  plan: RolePlan;
  o: StartOptions;
  cleanup: (() => Promise<void> | void)[];
  control: ControlMetrics;
  /** `manifests`: applied in every replica before its controllers can run (serve/manifests.ts). */
  manifests?: ManifestsWatcher;
}

/**
 * Starts the CA: store, signing material (first start creates root and intermediate, later starts
 * reuse them), authenticator, gRPC (Istio CA API) and HTTP listeners, leadership.
 */
export async function startServer(input: ServeConfig | (ConfigInput & { dir: string }), o: StartOptions = {}): Promise<RunningServer> {
  // loadConfig adds where the file came from; it is not a setting.
  const { configFile: _file, ...settings } = input as ServeConfig & { configFile?: string };
  const config = resolveConfig(settings as ConfigInput & { dir: string });
  const log = o.logger ?? createLogger(config.logLevel);
  const role = o.role ?? 'single';
  const plan = planFor(role);
  const control = new ControlMetrics(config.cluster);
  await probeListenAddresses(config, { grpc: !o.grpcHandedOff, http: plan.http });
  const store = await openServeStore(config, plan, o.audit ?? 'on', log, () => control.auditWriteFailed());
  const cleanup: Ctx['cleanup'] = [() => store.close()];
  const closeAll = async () => {
    for (const f of cleanup.reverse()) await f();
  };
  const passphrase = o.passphrase ?? (process.env.MESHCA_KEY_PASSPHRASE || undefined);
  try {
    const server = await start({ config, store, log, now: o.now ?? (() => new Date()), passphrase, role, plan, o, cleanup, control });
    let closing: Promise<void> | undefined;
    return { ...server, close: () => (closing ??= closeAll()) };
  } catch (e) {
    await closeAll().catch(() => {});
    throw e;
  }
}

async function start(c: Ctx): Promise<Omit<RunningServer, 'close'>> {
  const { config, store, log, now, plan, o, cleanup } = c;
  const state = new CaState(config.dir, { passphrase: c.passphrase, progress: o.progress });
  // Read before the material: a refused PCA API stops serve before anything is created.
  const pcaApi = plan.http ? servePcaApi(config) : undefined;
  const deps = { config, state, store, log, now, passphrase: c.passphrase, progress: o.progress, renewalPauseMs: o.renewalPauseMs };
  const material = await openMaterialSource(c.role, deps);
  cleanup.push(() => material.close());
  c.manifests = await watchManifests(config, plan.controllers, c);
  if (c.manifests) cleanup.push(() => c.manifests!.close());
  const authority = material.createAuthority(policyOf(config), now);
  const local = await LocalTokenIssuer.open(store, { passphrase: c.passphrase });
  const metrics = new ServerMetrics();
  if (plan.metrics === 'ipc') {
    // prom-client answers the primary's metric requests once an AggregatorRegistry is constructed.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([metrics.registry]);
  }
  metrics.setHierarchy(config.cluster, [authority.signer.cert, ...authority.signer.chain], authority.roots);
  const service = issuanceService(c, await authenticatorFor(c, local, material), authority, material, metrics);
  // Pushed before the transports: cleanups run last first, so the summary is written after they stop.
  cleanup.push(() => service.close());

  let tls: ServingTls | undefined;
  // A renewed intermediate (or a worker's reload of it): new requests sign with it, requests in flight
  // finish with the signer they already hold, and a serving certificate below it follows.
  material.onSwap((m: SigningMaterial) => {
    authority.setMaterial(m);
    metrics.setHierarchy(config.cluster, [m.signer.cert, ...m.signer.chain], m.roots);
    if (tls?.followsMaterial)
      tls
        .renew()
        .catch((e: unknown) => log.error({ err: e }, 'serving certificate from the new intermediate failed; the current one stays'));
    o.onCaChanged?.();
  });
  if (plan.http) publishTrustBundle({ dir: config.dir, authority, material, log });
  tls = plan.grpc && !config.plaintext ? await startServingTls(c, material, authority, metrics) : undefined;
  const grpc = plan.grpc ? await startGrpc(c, service, tls) : { port: 0 };

  // Set once leadership is up (below); the dashboard may be asked before that.
  let leaderRef: Leadership | undefined;
  const dashboard = { state, authority, material, leader: () => leaderRef, serving: () => tls?.current };
  const httpPort = plan.http ? await startHttp(c, dashboard, metrics.registry) : 0;
  const api = pcaApi && (await pcaApi.start(state, log));
  if (api) cleanup.push(() => api.close());

  // Leader-only controllers start once everything serves.
  const leader =
    material.leadership ??
    (plan.controllers ? await kubernetesLeadership(config, { log, now }) : undefined) ??
    (await soleLeadership(plan.controllers, now));
  // First to run at shutdown: a leader steps down (and frees its lock for a follower) before draining.
  cleanup.push(() => leader.stop());
  leaderRef = leader;
  if (o.onLeader) leader.onLeader(o.onLeader);
  if (plan.controllers) await startControllers(c, authority, material, leader);

  const root = authority.roots[authority.roots.length - 1];
  return {
    config,
    grpcPort: grpc.port,
    httpPort,
    grpcAddress: joinHostPort(splitHostPort(config.grpcAddr).host, grpc.port),
    httpAddress: joinHostPort(splitHostPort(config.httpAddr).host, httpPort),
    rootPem: root.pem,
    rootFingerprint: root.fingerprint256,
    createdRoot: material.createdRoot,
    createdIntermediate: material.createdIntermediate,
    pcaApiUrl: api?.url,
    reloadCa: () => material.reload(),
    issueToken: (r) => local.issue({ ...r, ttlSeconds: r.ttlSeconds ?? 3600, audience: r.audience ?? config.audience, now: now() }),
    onLeader: (cb) => leader.onLeader(cb),
    isLeader: () => leader.isLeader(),
    appendAudit: (e) => store.appendAudit(e),
    acceptConnection: grpc.accept,
  };
}

/** The gRPC serving certificate, from wherever the material source gets certificates, renewed before it expires. */
async function startServingTls(c: Ctx, material: MaterialSource, authority: Authority, metrics: ServerMetrics): Promise<ServingTls> {
  const { config, now, log } = c;
  const onIssue = (s: { notAfter: Date }) => metrics.setServingExpiry(s.notAfter);
  const tls = await ServingTls.start(material.servingIssuer(authority), {
    sans: config.servingSans,
    ttlSeconds: config.servingTtl,
    now,
    log,
    onIssue,
  });
  c.cleanup.push(() => tls.stop());
  return tls;
}

function policyOf(config: ServeConfig): Policy {
  return {
    trustDomain: config.trustDomain,
    trustDomainAliases: config.trustDomainAliases,
    defaultTtlSeconds: config.defaultTtl,
    maxTtlSeconds: config.maxTtl,
    maxCsrBytes: config.maxCsrBytes,
    impersonationAllow: config.impersonationAllow,
  };
}

function authenticatorFor({ config, now }: Ctx, local: LocalTokenIssuer, material: MaterialSource): Promise<Authenticator> {
  return createAuthenticator({
    trustDomain: config.trustDomain,
    trustDomainAliases: config.trustDomainAliases,
    audience: config.audience,
    local: config.localTokens ? local : undefined,
    jwksFile: config.jwksFile,
    jwksIssuer: config.jwksIssuer,
    oidcIssuer: config.oidcIssuer,
    kubeconfig: config.kubeconfig,
    issuers: () => material.issuers(),
    now,
  });
}

function issuanceService(
  { config, store, now }: Ctx,
  authenticator: Authenticator,
  authority: Authority,
  material: MaterialSource,
  metrics: ServerMetrics,
): IssuanceService {
  // auditDurable: answer only once the audit row is committed (ca/durable-issuance.ts).
  const Service = auditDurableOf(config) ? DurableIssuanceService : IssuanceService;
  return new Service({
    authenticator,
    authority,
    store,
    limiter: new RateLimiter(config.rateLimit, config.rateBurst),
    cluster: config.cluster,
    observer: metrics,
    workloadSigner: material.workloadSigner,
    now,
    unauthenticatedAuditRate: config.unauthenticatedAuditRate,
    unauthenticatedAuditBurst: config.unauthenticatedAuditBurst,
  });
}

/** The Istio CA API over HTTP/2: listening, or (workers of --workers) serving connections the primary hands over. */
async function startGrpc(
  { config, log, o, cleanup }: Ctx,
  service: IssuanceService,
  tls: ServingTls | undefined,
): Promise<{ port: number; accept?: (socket: Socket) => void }> {
  const m = tls?.material;
  const h2 = createH2GrpcServer({
    engine: config.grpcTransport === 'h2' ? 'frames' : 'node',
    routes: { [METHOD_PATH]: h2CreateCertificateHandler(service, log) },
    maxMessageBytes: Math.max(4 << 20, config.maxCsrBytes * 4),
    tls: m ? { cert: m.certChainPem, key: m.keyPem, ca: m.trustedCaPem } : undefined,
    onError: (e) => log.error({ err: e }, 'gRPC call failed'),
  });
  tls?.subscribe((n) => h2.updateTls({ cert: n.certChainPem, key: n.keyPem, ca: n.trustedCaPem }));
  let port = 0;
  // tls.Server (and node:http2's secure server) serve a socket emitted as 'connection'.
  const accept = o.grpcHandedOff ? (socket: Socket) => void h2.server.emit('connection', socket) : undefined;
  if (!accept) {
    const gp = splitHostPort(config.grpcAddr);
    port = await h2.listen(gp.host, gp.port).catch((e: Error) => Promise.reject(grpcBindError(config.grpcAddr, e)));
  }
  cleanup.push(() => h2.close());
  return { port, accept };
}

interface DashboardInputs {
  state: CaState;
  authority: Authority;
  material: MaterialSource;
  leader: () => Leadership | undefined;
  serving: () => ServingTls['current'];
}

/** Health, metrics, the API and the operator dashboard; returns the bound port. */
async function startHttp(
  { config, store, log, now, role, plan, o, cleanup, control, manifests }: Ctx,
  d: DashboardInputs,
  own: Registry,
): Promise<number> {
  const { authority, material } = d;
  control.setLeadership(() => d.leader()?.isLeader());
  const aggregator = plan.metrics === 'aggregate' ? new AggregatorRegistry() : undefined;
  const base = aggregator ? { metrics: () => aggregator.clusterMetrics(), contentType: aggregator.contentType } : own;
  const http = createHttpServer({
    authority,
    store,
    registry: withRegistries(base, [control.registry, ...(material.metrics ? [material.metrics] : []), ...(o.metricsRegistries ?? [])]),
    trustDomain: config.trustDomain,
    cluster: config.cluster,
    audit: o.audit ?? 'on',
    serving: d.serving,
    notReady: () => authority.notReadyReason(),
    readyDetail: () => ({
      ...(material.readyDetail ? { upstream: material.readyDetail() } : {}),
      ...(manifests ? { manifests: manifests.detail() } : {}),
    }),
    now,
    log,
    dashboard: dashboardFor({
      config,
      authority,
      store,
      state: d.state,
      role,
      now,
      leader: d.leader,
      serving: d.serving,
      signing: () => material.describe(),
      upstreamDetail: material.readyDetail,
    }),
  });
  const bound = await listenHttp(http, config.httpAddr);
  cleanup.push(() => bound.close());
  return bound.port;
}

/** Leader-only tasks: Kubernetes (CSR signer, Istio Secrets) and the declarative controllers. */
async function startControllers(
  { config, log, now, passphrase, cleanup }: Ctx,
  authority: Authority,
  material: MaterialSource,
  leader: Leadership,
): Promise<void> {
  await startKubernetesControllers(config, { authority, log, now, leader });
  if (!config.controllers) return;
  // A cacerts the controllers write for the served cluster is reloaded at once.
  const controllers = wireControllers({
    dir: config.dir,
    leader,
    log,
    now,
    passphrase,
    shared: await sharedCacertsFor(config),
    onCacertsWrite: (cluster) => void (cluster === config.cluster && material.bundleWritten()),
  });
  cleanup.push(() => controllers.close());
}
