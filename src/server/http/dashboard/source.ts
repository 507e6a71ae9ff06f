import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FileResourceStore } from '../../../resources/file-store.js';
import { ROOT_ROTATION, ROOT_TRUST_POLICY } from '../../../resources/kinds.js';
import type { RootTrustPolicy } from '../../../resources/gloo.js';
import { ROTATION_PHASES, type RootRotation } from '../../../resources/meshca.js';

/**
 * What the dashboard shows that lives outside the CA core: the root-rotation phase (from the
 * declarative resource store) and the health of what the CA depends on (PCA, Kubernetes, the
 * database). Every method is optional and may return undefined; the page then says "not
 * configured" instead of failing. Other subsystems supply richer sources through startServer.
 */
export interface DashboardSource {
  rootRotation?(): Promise<RotationView | undefined>;
  upstreams?(): Promise<UpstreamView[]>;
  renewalPolicies?(): Promise<RenewalPolicyView[]>;
}

/** A RootTrustPolicy and the clusters whose intermediates it issues and renews. */
export interface RenewalPolicyView {
  name: string;
  clusters: Record<string, { renewalTime?: string }>;
}

export interface RotationView {
  name: string;
  phase: string;
  /** Every phase in order, so the page can draw the steps. */
  phases: string[];
  message?: string;
  oldRootFingerprint?: string;
  newRootFingerprint?: string;
  history: { phase: string; time: string }[];
  /** Root rotations the store holds besides the one shown. */
  others: number;
}

export type HealthStatus = 'ok' | 'degraded' | 'down' | 'unknown' | 'not_configured';

export interface UpstreamView {
  name: string;
  kind: 'pca' | 'kubernetes' | 'database' | 'files' | 'local';
  status: HealthStatus;
  detail: string;
}

/** The newest unfinished RootRotation (else the newest finished one) from the embedded resource store. */
export async function rotationFromResources(stateDir: string): Promise<RotationView | undefined> {
  if (!existsSync(join(stateDir, 'resources'))) return undefined;
  const all = await new FileResourceStore(stateDir).list<RootRotation>(ROOT_ROTATION);
  if (all.length === 0) return undefined;
  const created = (r: RootRotation) => Date.parse(r.metadata.creationTimestamp ?? '') || 0;
  const sorted = [...all].sort((a, b) => created(b) - created(a));
  const shown = sorted.find((r) => r.status?.phase !== 'Complete') ?? sorted[0];
  const st = shown.status ?? {};
  return {
    name: shown.metadata.namespace ? `${shown.metadata.namespace}/${shown.metadata.name}` : shown.metadata.name,
    phase: st.phase ?? 'Pending',
    phases: [...ROTATION_PHASES],
    message: st.message,
    oldRootFingerprint: st.oldRootFingerprint,
    newRootFingerprint: st.newRootFingerprint,
    history: (st.history ?? []).map((h) => ({ phase: h.phase, time: h.time })),
    others: all.length - 1,
  };
}

/** The RootTrustPolicies in the embedded resource store, with the renewal time of each cluster they cover. */
export async function renewalPoliciesFromResources(stateDir: string): Promise<RenewalPolicyView[]> {
  if (!existsSync(join(stateDir, 'resources'))) return [];
  const all = await new FileResourceStore(stateDir).list<RootTrustPolicy>(ROOT_TRUST_POLICY);
  return all.map((p) => ({
    name: p.metadata.namespace ? `${p.metadata.namespace}/${p.metadata.name}` : p.metadata.name,
    clusters: Object.fromEntries(Object.entries(p.status?.clusters ?? {}).map(([c, st]) => [c, { renewalTime: st.renewalTime }])),
  }));
}

/** /readyz's `upstream` object (ca/material/upstream.ts) as a health line. */
export function upstreamHealth(detail: Record<string, unknown> | undefined, type: string): UpstreamView {
  const kind: UpstreamView['kind'] = type === 'awspca' ? 'pca' : type === 'files' ? 'files' : type === 'k8s-csr' ? 'kubernetes' : 'local';
  const name = type === 'awspca' ? 'AWS Private CA' : type === 'k8s-csr' ? 'Kubernetes CSR signer' : `upstream ${type}`;
  if (!detail) return { name, kind, status: 'unknown', detail: 'no status reported by this process' };
  const err = detail.lastError as { message?: string; at?: string } | null | undefined;
  const ready = detail.ready === true;
  const status: HealthStatus = !ready ? 'down' : err ? 'degraded' : 'ok';
  const parts = [
    typeof detail.arn === 'string' ? detail.arn : typeof detail.source === 'string' ? detail.source : '',
    typeof detail.mode === 'string' ? `mode ${detail.mode}` : '',
    err?.message ? `last error: ${err.message}` : '',
    typeof detail.nextRenewal === 'string' ? `next renewal ${detail.nextRenewal}` : '',
  ].filter(Boolean);
  return { name, kind, status, detail: parts.join('; ') };
}

/** Combines sources: the first that answers a question wins (for upstreams, the first line of each name). */
export function combineSources(...sources: (DashboardSource | undefined)[]): DashboardSource {
  const list = sources.filter((s): s is DashboardSource => s !== undefined);
  return {
    async rootRotation() {
      for (const s of list) {
        const r = await s.rootRotation?.().catch(() => undefined);
        if (r) return r;
      }
      return undefined;
    },
    async renewalPolicies() {
      for (const s of list) {
        const r = await s.renewalPolicies?.().catch(() => undefined);
        if (r && r.length > 0) return r;
      }
      return [];
    },
    async upstreams() {
      const out: UpstreamView[] = [];
      for (const s of list) {
        for (const u of (await s.upstreams?.().catch(() => [])) ?? []) if (!out.some((o) => o.name === u.name)) out.push(u);
      }
      return out;
    },
  };
}
