import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DAY, NOW, makeIntermediate, makeRoot } from '../../../../test/helpers/pki.js';
import { FileResourceStore } from '../../../resources/file-store.js';
import { ROOT_ROTATION, ROOT_TRUST_POLICY } from '../../../resources/kinds.js';
import { dashboardDocument, expiryClass, type DashboardInput } from './data.js';
import { combineSources, renewalPoliciesFromResources, rotationFromResources, upstreamHealth } from './source.js';

const at = (days: number) => new Date(NOW.getTime() + days * DAY);

test('expiry classes follow the share of life left, for a 10-year root and a 1-hour intermediate alike', () => {
  const cases: [number, number, number, string][] = [
    // notBefore, notAfter, now (days): class
    [0, 3650, 1, 'ok'],
    [0, 3650, 2500, 'warn'],
    [0, 3650, 3400, 'critical'],
    [0, 3650, 3651, 'expired'],
    [0, 1 / 24, 1 / 48, 'ok'],
    [0, 1 / 24, (1 / 24) * 0.8, 'warn'],
    [0, 1 / 24, (1 / 24) * 0.95, 'critical'],
  ];
  for (const [nb, na, now, want] of cases) assert.equal(expiryClass(at(nb), at(na), at(now)), want, `${nb}..${na} at ${now}`);
});

function input(over: Partial<DashboardInput> = {}): DashboardInput {
  return {
    now: NOW,
    trustDomain: 'cluster.local',
    cluster: 'default',
    roots: [],
    intermediates: [],
    replica: { id: 'r1', role: 'single', store: 'sqlite', leader: true, auditDurable: false },
    upstreams: [],
    windowMinutes: 60,
    ...over,
  };
}

test('the hierarchy places each intermediate under the root it chains to; others are orphans', () => {
  const a = makeRoot({ cn: 'Root A', now: at(-10) });
  const b = makeRoot({ cn: 'Root B', now: at(-10) });
  const elsewhere = makeRoot({ cn: 'Not trusted', now: at(-10) });
  const east = makeIntermediate(a, { cn: 'east', now: at(-1) });
  const west = makeIntermediate(b, { cn: 'west', now: at(-1) });
  const stray = makeIntermediate(elsewhere, { cn: 'stray', now: at(-1) });
  const d = dashboardDocument(
    input({
      roots: [a.cert, b.cert],
      intermediates: [
        { cluster: 'east', cert: east.cert, chain: [a.cert], signing: true, source: 'state-dir' },
        { cluster: 'west', cert: west.cert, chain: [], signing: false, source: 'database', generation: 3, nextRenewal: at(100) },
        { cluster: 'stray', cert: stray.cert, chain: [elsewhere.cert], signing: false, source: 'state-dir' },
      ],
      stats: { buckets: [], clusters: [{ cluster: 'east', issued: 7, valid: 5 }], reasons: [], recentRefusals: [] },
    }),
  );
  assert.deepEqual(
    d.hierarchy.roots.map((r) => [r.commonName, r.intermediates.map((i) => i.cluster)]),
    [
      ['Root A', ['east']],
      ['Root B', ['west']],
    ],
  );
  assert.deepEqual(
    d.hierarchy.orphans.map((i) => i.cluster),
    ['stray'],
  );
  const eastNode = d.hierarchy.roots[0].intermediates[0];
  assert.deepEqual(eastNode.workloads, { valid: 5, issuedLastHour: 7, lastIssued: null });
  assert.equal(d.hierarchy.roots[1].intermediates[0].generation, 3);
  assert.equal(d.validWorkloadCertificates, 5);
});

test('rates fill every minute of the window; the timeline lists what is ahead, soonest first', () => {
  const root = makeRoot({ now: at(-10) });
  const inter = makeIntermediate(root, { now: at(-1), days: 3 });
  const minute = Math.floor(NOW.getTime() / 60_000) * 60_000;
  const d = dashboardDocument(
    input({
      roots: [root.cert],
      intermediates: [{ cluster: 'default', cert: inter.cert, chain: [root.cert], signing: true, source: 'database', nextRenewal: at(1) }],
      serving: { notBefore: at(-0.25), notAfter: at(0.75), sans: ['localhost'] },
      stats: {
        buckets: [
          { start: minute, issued: 4, refused: 1 },
          { start: minute - 59 * 60_000, issued: 2, refused: 0 },
          { start: minute - 60 * 60_000, issued: 99, refused: 99 },
        ],
        clusters: [],
        reasons: [{ reason: 'token_expired', count: 1 }],
        recentRefusals: [],
      },
    }),
  );
  assert.equal(d.rates.buckets.length, 60);
  assert.deepEqual(d.rates.buckets[59], { start: new Date(minute).toISOString(), issued: 4, refused: 1 });
  assert.equal(d.rates.buckets[0].issued, 2);
  assert.deepEqual([d.rates.issued, d.rates.refused], [6, 1], 'a bucket outside the window is ignored');
  assert.equal(d.rates.refusalRate, 1 / 7);
  assert.deepEqual(
    d.timeline.map((e) => `${e.kind} ${e.what}`),
    ['renewal serving', 'expiry serving', 'renewal intermediate', 'expiry intermediate', 'expiry root'],
  );
  assert.ok(d.timeline.every((e, i, all) => i === 0 || all[i - 1].inSeconds <= e.inSeconds));
  assert.equal(d.soonestCaExpiry?.commonName, 'Test Intermediate');
});

test('an intermediate a RootTrustPolicy renews says so, with the policy and its next renewal', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-dash-'));
  assert.deepEqual(await renewalPoliciesFromResources(dir), []);
  const store = new FileResourceStore(dir);
  const { object } = await store.apply(
    ROOT_TRUST_POLICY,
    {
      apiVersion: 'admin.gloo.solo.io/v2',
      kind: 'RootTrustPolicy',
      metadata: { name: 'root-trust-policy', namespace: 'gloo-mesh' },
      spec: { config: { mgmtServerCa: { generated: {} } } },
    },
    NOW,
  );
  const renewal = at(20).toISOString();
  await store.updateStatus(ROOT_TRUST_POLICY, { ...object, status: { clusters: { default: { state: 'ISSUED', renewalTime: renewal } } } });
  const policies = await renewalPoliciesFromResources(dir);
  assert.deepEqual(policies, [{ name: 'gloo-mesh/root-trust-policy', clusters: { default: { renewalTime: renewal } } }]);

  const root = makeRoot({ now: at(-10) });
  const mine = makeIntermediate(root, { cn: 'default', now: at(-1) });
  const other = makeIntermediate(root, { cn: 'east', now: at(-1) });
  const d = dashboardDocument(
    input({
      roots: [root.cert],
      intermediates: [
        { cluster: 'default', cert: mine.cert, chain: [root.cert], signing: true, source: 'state-dir' },
        { cluster: 'east', cert: other.cert, chain: [root.cert], signing: false, source: 'state-dir' },
      ],
      policies,
    }),
  );
  const [signing, east] = d.hierarchy.roots[0].intermediates;
  assert.deepEqual(signing.renewedBy, { kind: 'RootTrustPolicy', name: 'gloo-mesh/root-trust-policy' });
  assert.equal(signing.nextRenewal, renewal);
  assert.equal(east.renewedBy, null, 'a cluster no policy covers stays manual');
  assert.equal(east.nextRenewal, null);
  assert.ok(d.timeline.some((e) => e.kind === 'renewal' && e.label === 'intermediate default renews' && e.at === renewal));
});

test('root rotation from the resource store; absent store or none applied is "not configured" (undefined)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-dash-'));
  assert.equal(await rotationFromResources(dir), undefined);
  const store = new FileResourceStore(dir);
  const { object } = await store.apply(
    ROOT_ROTATION,
    {
      apiVersion: 'meshca.io/v1alpha1',
      kind: 'RootRotation',
      metadata: { name: 'r2026', namespace: 'istio-system' },
      spec: { rootTrustPolicyRef: { name: 'rtp' } },
    },
    NOW,
  );
  await store.updateStatus(ROOT_ROTATION, {
    ...object,
    status: { phase: 'TrustBundleExpanded', history: [{ phase: 'NewRootCreated', time: NOW.toISOString() }] },
  });
  const r = await rotationFromResources(dir);
  assert.equal(r?.name, 'istio-system/r2026');
  assert.equal(r?.phase, 'TrustBundleExpanded');
  assert.ok(r && r.phases.indexOf('TrustBundleExpanded') > r.phases.indexOf('NewRootCreated'));
});

test('upstream health from /readyz detail; sources combine without duplicate names', async () => {
  assert.equal(upstreamHealth({ ready: true, lastError: null, arn: 'arn:x' }, 'awspca').status, 'ok');
  assert.equal(upstreamHealth({ ready: true, lastError: { message: 'throttled' } }, 'awspca').status, 'degraded');
  assert.match(upstreamHealth({ ready: false, lastError: { message: 'down' } }, 'awspca').detail, /last error: down/);
  assert.equal(upstreamHealth(undefined, 'awspca').status, 'unknown');
  const s = combineSources(
    { upstreams: async () => [{ name: 'AWS Private CA', kind: 'pca', status: 'ok', detail: 'from the PCA engineer' }] },
    undefined,
    {
      upstreams: async () => [
        { name: 'AWS Private CA', kind: 'pca', status: 'not_configured', detail: 'default' },
        { name: 'Kubernetes API', kind: 'kubernetes', status: 'not_configured', detail: '' },
      ],
      rootRotation: async () => undefined,
    },
  );
  assert.deepEqual(
    (await s.upstreams!()).map((u) => `${u.name}:${u.status}`),
    ['AWS Private CA:ok', 'Kubernetes API:not_configured'],
  );
  assert.equal(await s.rootRotation!(), undefined);
});
