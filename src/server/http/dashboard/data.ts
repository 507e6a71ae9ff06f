import type { ParsedCertificate } from '../../../pki/certificate.js';
import type { AuditStats } from '../../../store/index.js';
import type { RenewalPolicyView, RotationView, UpstreamView } from './source.js';

/**
 * GET /v1/dashboard: everything the page draws, computed here so that the browser only renders.
 * Pure: the inputs (certificates, audit aggregates, replica state) are gathered by index.ts.
 */

export type ExpiryClass = 'ok' | 'warn' | 'critical' | 'expired';

/**
 * Colour by the share of life left, which suits a 10-year root and a 1-hour intermediate alike:
 * warn inside the renewal window (the last third, when renewal is due as in cert-manager),
 * critical in the last tenth (renewal should have happened), expired after NotAfter.
 */
export function expiryClass(notBefore: Date, notAfter: Date, now: Date): ExpiryClass {
  const left = notAfter.getTime() - now.getTime();
  if (left <= 0) return 'expired';
  const life = Math.max(1, notAfter.getTime() - notBefore.getTime());
  const frac = left / life;
  if (frac < 0.1) return 'critical';
  if (frac < 1 / 3) return 'warn';
  return 'ok';
}

export interface CertNode {
  subject: string;
  commonName: string;
  serial: string;
  fingerprint256: string;
  keyAlgorithm: string;
  notBefore: string;
  notAfter: string;
  expiresInSeconds: number;
  /** Share of the lifetime still ahead, 0..1. */
  lifeLeft: number;
  expiry: ExpiryClass;
}

export interface IntermediateView {
  cluster: string;
  cert: ParsedCertificate;
  /** Issuers above it, root last. */
  chain: ParsedCertificate[];
  /** The intermediate this process signs workloads with. */
  signing: boolean;
  source: 'state-dir' | 'database' | 'upstream';
  generation?: number;
  nextRenewal?: Date;
  /** The RootTrustPolicy that issues and renews it, when one covers its cluster. */
  renewedBy?: string;
}

export interface ReplicaView {
  id: string;
  role: string;
  store: 'sqlite' | 'postgres';
  leader: boolean;
  leaderSince?: Date;
  auditDurable: boolean;
}

export interface DashboardInput {
  now: Date;
  trustDomain: string;
  cluster: string;
  roots: ParsedCertificate[];
  intermediates: IntermediateView[];
  /** Undefined when the store has no aggregates. */
  stats?: AuditStats;
  serving?: { notBefore?: Date; notAfter: Date; sans: string[] };
  replica: ReplicaView;
  rotation?: RotationView;
  upstreams: UpstreamView[];
  /** Recent leader terms, newest first (replicas sharing PostgreSQL). */
  terms?: { term: number; holder: string; acquiredAt: Date }[];
  /** RootTrustPolicies from the resource store; the clusters they cover are renewed by them. */
  policies?: RenewalPolicyView[];
  windowMinutes: number;
}

function commonName(subject: string): string {
  return subject.match(/CN = ([^,]+)/)?.[1] ?? subject.match(/O = ([^,]+)/)?.[1] ?? subject;
}

export function certNode(c: ParsedCertificate, now: Date): CertNode {
  const life = Math.max(1, c.notAfter.getTime() - c.notBefore.getTime());
  const left = c.notAfter.getTime() - now.getTime();
  return {
    subject: c.subject,
    commonName: commonName(c.subject),
    serial: c.serialHex,
    fingerprint256: c.fingerprint256,
    keyAlgorithm: c.keyInfo.label,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    expiresInSeconds: Math.floor(left / 1000),
    lifeLeft: Math.min(1, Math.max(0, left / life)),
    expiry: expiryClass(c.notBefore, c.notAfter, now),
  };
}

export interface TimelineEvent {
  at: string;
  inSeconds: number;
  kind: 'expiry' | 'renewal';
  what: 'root' | 'intermediate' | 'serving';
  label: string;
  expiry: ExpiryClass;
}

function timeline(i: DashboardInput): TimelineEvent[] {
  const t = i.now.getTime();
  const out: TimelineEvent[] = [];
  const add = (at: Date, kind: TimelineEvent['kind'], what: TimelineEvent['what'], label: string, expiry: ExpiryClass) => {
    if (at.getTime() >= t) out.push({ at: at.toISOString(), inSeconds: Math.floor((at.getTime() - t) / 1000), kind, what, label, expiry });
  };
  for (const r of i.roots)
    add(r.notAfter, 'expiry', 'root', `root ${commonName(r.subject)} expires`, expiryClass(r.notBefore, r.notAfter, i.now));
  for (const m of i.intermediates) {
    const cls = expiryClass(m.cert.notBefore, m.cert.notAfter, i.now);
    add(m.cert.notAfter, 'expiry', 'intermediate', `intermediate ${m.cluster} expires`, cls);
    if (m.nextRenewal) add(m.nextRenewal, 'renewal', 'intermediate', `intermediate ${m.cluster} renews`, cls);
  }
  if (i.serving) {
    const s = i.serving;
    const cls = s.notBefore ? expiryClass(s.notBefore, s.notAfter, i.now) : 'ok';
    add(s.notAfter, 'expiry', 'serving', 'serving certificate expires', cls);
    // ServingTls renews at half life.
    if (s.notBefore)
      add(new Date((s.notBefore.getTime() + s.notAfter.getTime()) / 2), 'renewal', 'serving', 'serving certificate renews', cls);
  }
  return out.sort((a, b) => a.inSeconds - b.inSeconds);
}

function rates(i: DashboardInput) {
  const bucketMs = 60_000;
  const end = Math.floor(i.now.getTime() / bucketMs) * bucketMs;
  const from = end - (i.windowMinutes - 1) * bucketMs;
  const byStart = new Map((i.stats?.buckets ?? []).map((b) => [b.start, b]));
  const buckets = Array.from({ length: i.windowMinutes }, (_, k) => {
    const start = from + k * bucketMs;
    const b = byStart.get(start);
    return { start: new Date(start).toISOString(), issued: b?.issued ?? 0, refused: b?.refused ?? 0 };
  });
  const issued = buckets.reduce((n, b) => n + b.issued, 0);
  const refused = buckets.reduce((n, b) => n + b.refused, 0);
  return {
    bucketSeconds: 60,
    from: new Date(from).toISOString(),
    buckets,
    issued,
    refused,
    refusalRate: issued + refused === 0 ? 0 : refused / (issued + refused),
    available: i.stats !== undefined,
  };
}

/** Which root an intermediate chains to: the top of its chain, or the root that names it as issuer. */
function rootOf(m: IntermediateView, roots: ParsedCertificate[]): ParsedCertificate | undefined {
  const top = m.chain[m.chain.length - 1];
  return roots.find((r) => (top && r.der.equals(top.der)) || (!top && r.subjectDer.equals(m.cert.issuerDer)));
}

/** Marks the intermediates a RootTrustPolicy renews, taking its renewal time when the source gave none. */
function withPolicies(i: DashboardInput): DashboardInput {
  const policies = i.policies ?? [];
  const intermediates = i.intermediates.map((m) => {
    const p = policies.find((x) => m.cluster in x.clusters);
    if (!p) return m;
    const at = p.clusters[m.cluster].renewalTime;
    return { ...m, renewedBy: p.name, nextRenewal: m.nextRenewal ?? (at ? new Date(at) : undefined) };
  });
  return { ...i, intermediates };
}

export function dashboardDocument(input: DashboardInput) {
  const i = withPolicies(input);
  const now = i.now;
  const perCluster = new Map((i.stats?.clusters ?? []).map((c) => [c.cluster, c]));
  const interNode = (m: IntermediateView) => {
    const w = perCluster.get(m.cluster);
    return {
      ...certNode(m.cert, now),
      cluster: m.cluster,
      signing: m.signing,
      source: m.source,
      generation: m.generation ?? null,
      nextRenewal: m.nextRenewal?.toISOString() ?? null,
      renewedBy: m.renewedBy ? { kind: 'RootTrustPolicy' as const, name: m.renewedBy } : null,
      workloads: { valid: w?.valid ?? 0, issuedLastHour: w?.issued ?? 0, lastIssued: w?.lastIssued?.toISOString() ?? null },
    };
  };
  const placed = new Set<IntermediateView>();
  const roots = i.roots.map((r) => {
    const mine = i.intermediates.filter((m) => rootOf(m, [r]) !== undefined);
    mine.forEach((m) => placed.add(m));
    return { ...certNode(r, now), intermediates: mine.map(interNode) };
  });
  const orphans = i.intermediates.filter((m) => !placed.has(m)).map(interNode);
  const ca = [...i.roots.map((r) => certNode(r, now)), ...i.intermediates.map((m) => certNode(m.cert, now))];
  // The soonest expiry still ahead is the one to act on; expired ones are counted apart.
  const soonest = ca.filter((c) => c.expiry !== 'expired').sort((a, b) => a.expiresInSeconds - b.expiresInSeconds)[0];
  const expiredCas = ca.filter((c) => c.expiry === 'expired').length;
  return {
    generatedAt: now.toISOString(),
    trustDomain: i.trustDomain,
    cluster: i.cluster,
    replica: { ...i.replica, leaderSince: i.replica.leaderSince?.toISOString() ?? null },
    leaderTerms: (i.terms ?? []).map((t) => ({ term: t.term, holder: t.holder, acquiredAt: t.acquiredAt.toISOString() })),
    hierarchy: { roots, orphans },
    soonestCaExpiry: soonest
      ? { commonName: soonest.commonName, notAfter: soonest.notAfter, expiresInSeconds: soonest.expiresInSeconds, expiry: soonest.expiry }
      : null,
    expiredCas,
    validWorkloadCertificates: [...perCluster.values()].reduce((n, c) => n + c.valid, 0),
    timeline: timeline(i),
    rates: rates(i),
    refusalReasons: i.stats?.reasons ?? [],
    refusals: (i.stats?.recentRefusals ?? []).map((r) => ({
      time: r.time.toISOString(),
      reason: r.reason,
      identity: r.identity,
      caller: r.caller,
      method: r.method,
      clientCluster: r.clientCluster ?? null,
      message: r.message ?? '',
    })),
    rotation: i.rotation ?? null,
    upstreams: i.upstreams,
  };
}

export type DashboardDocument = ReturnType<typeof dashboardDocument>;
