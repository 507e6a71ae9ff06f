import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DAY, NOW, daysFrom, makeCustom, makeIntermediate, makeLeaf, makeRoot } from '../../test/helpers/pki.js';
import { lifetimeFinding } from './findings.js';
import { servedFindings } from './served-checks.js';
import type { ServedObservation } from './served.js';
import { stateFindings } from './state-checks.js';
import type { StateSnapshot } from './state-read.js';

describe('doctor checks (pure)', () => {
  const root = makeRoot();
  const inter = makeIntermediate(root, { days: 30 });

  it('lifetime: ok before the renewal point, its severity inside the window, fail once expired or not yet valid', () => {
    const renewal = { at: daysFrom(NOW, 27), rule: 'test rule', severity: 'fail' as const };
    assert.equal(lifetimeFinding('x', inter.cert, daysFrom(NOW, 26), { renewal }).severity, 'ok');
    const due = lifetimeFinding('x', inter.cert, daysFrom(NOW, 27), { renewal, fix: 'do it' });
    assert.deepEqual([due.severity, due.fix], ['fail', 'do it']);
    assert.match(due.message, /was due for renewal at 2025-06-28T12:00:00Z \(test rule\) and has not been renewed/);
    assert.match(lifetimeFinding('x', inter.cert, daysFrom(NOW, 31)).message, /expired at /);
    assert.match(
      lifetimeFinding('x', inter.cert, new Date(NOW.getTime() - 2 * DAY)).message,
      /is not valid until 2025-06-01T11:59:00Z \(48h from now\)/,
    );
  });

  it('clock: a server more than a minute off is a warning that explains why, a second is rounding', () => {
    const obs = (skewMs: number): ServedObservation => ({
      caAddr: '127.0.0.1:1',
      serverName: 'istiod.istio-system.svc',
      caRootFile: 'root.pem',
      caRoots: [root.cert],
      tlsError: 'not probed',
      http: { addr: '127.0.0.1:2', errors: [], serverDate: new Date(NOW.getTime() + skewMs), localDate: NOW },
    });
    const clock = (skewMs: number) => servedFindings(obs(skewMs), NOW).find((f) => f.check === 'clock')!;
    assert.equal(clock(1000).severity, 'ok');
    assert.equal(clock(-60_000).severity, 'ok');
    const ahead = clock(5 * 60_000);
    assert.equal(ahead.severity, 'warn');
    assert.match(ahead.message, /^the server's clock is 5m ahead of this machine's: .*not yet valid/);
    assert.match(clock(-3 * 3_600_000).message, /3h behind/);
  });

  it('state: a root that is not self-signed, and a cluster with no intermediate, fail with their fixes', () => {
    const notRoot = makeCustom({ issuer: root, cn: 'Test Root', ca: true, keyUsage: ['keyCertSign'] });
    const snap: StateSnapshot = {
      dir: '/s',
      rootPath: '/s/root/root-cert.pem',
      root: notRoot.cert,
      clusters: [{ name: 'east', dir: '/s/clusters/east/cacerts', registered: true, chain: [], roots: [] }],
      failed: [{ object: 'Issuer istio-system/mesh', reason: 'ErrInvalidKeyPair', message: 'secret not found' }],
    };
    const bad = stateFindings(snap, { now: NOW }).filter((f) => f.severity !== 'ok');
    assert.deepEqual(
      bad.map((f) => [f.check, f.fix]),
      [
        ['root', undefined],
        ['cluster east', 'meshca reconcile --dir /s'],
        ['resource Issuer istio-system/mesh', 'meshca reconcile --dir /s'],
      ],
    );
    assert.match(bad[0].message, /is not self-signed/);
    assert.match(bad[2].message, /^ErrInvalidKeyPair: secret not found; fix the cause, then reconcile$/);
  });

  it('served: a leaf past the half life serve renews it at is a warning, not a failure', () => {
    const leaf = makeLeaf(inter, { ttlSeconds: 86_400 });
    const o: ServedObservation = {
      caAddr: 'ca:15012',
      serverName: 'spiffe-less',
      caRootFile: 'root.pem',
      caRoots: [root.cert],
      tls: { chain: [leaf.cert, inter.cert], alpn: 'h2' },
    };
    const at = new Date(NOW.getTime() + 20 * 3_600_000);
    const life = servedFindings(o, at).find((f) => f.check === 'CA ca:15012 serving certificate')!;
    assert.equal(life.severity, 'warn');
    assert.match(life.message, /meshca serve renews it at half life/);
  });
});

describe('doctor checks: no state root', () => {
  it("a RootTrustPolicy's own CA or an upstream's: the clusters are checked against the root their bundles carry", () => {
    const root = makeRoot();
    const inter = makeIntermediate(root, { days: 30 });
    const alien = makeIntermediate(makeRoot({ cn: 'Other Root' }), { days: 30 });
    const cluster = (name: string, ca: typeof inter, r = root) => ({
      name,
      dir: `/s/clusters/${name}/cacerts`,
      registered: true,
      caCert: ca.cert,
      chain: [ca.cert, r.cert],
      roots: [r.cert],
      owner: 'RootTrustPolicy/gloo-mesh/rtp',
      policyRatio: 0.1,
    });
    const snap: StateSnapshot = {
      dir: '/s',
      rootPath: '/s/root/root-cert.pem',
      clusters: [cluster('east', inter), cluster('west', inter)],
      failed: [],
    };
    const all = stateFindings(snap, { now: NOW });
    assert.deepEqual(
      all.filter((f) => f.severity !== 'ok'),
      [],
    );
    // Both keepers of such a root are named: serve --upstream awspca leaves no root/ either.
    assert.match(all[0].message, /^no \/s\/root\/root-cert\.pem: .*AWS Private CA.*secretRef.*"Test Root"/);
    snap.clusters.push({ ...cluster('south', alien), roots: [alien.cert], chain: [alien.cert] });
    const bad = stateFindings(snap, { now: NOW }).filter((f) => f.severity !== 'ok');
    assert.deepEqual(
      bad.map((f) => f.check),
      ['cluster south', 'cluster south', 'shared root'],
    );
    assert.match(bad[0].message, /does not chain to the root the clusters trust "Test Root"/);
  });

  it('cert-manager Certificates: no Secret fails with reconcile, an empty ca.crt is a warning, renewBeforePercentage is the rule', () => {
    const root = makeRoot();
    const inter = makeIntermediate(root, { days: 30 });
    const base = { secretDir: '/s/secrets/istio-system/cacerts', spec: {}, chain: [], cas: [] };
    const snap: StateSnapshot = {
      dir: '/s',
      rootPath: '/s/root/root-cert.pem',
      clusters: [],
      failed: [],
      certificates: [
        { ...base, name: 'istio-system/pending', readError: 'its Secret istio-system/pending has no tls.crt (/s/x/tls.crt)' },
        { ...base, name: 'istio-system/no-ca', chain: [inter.cert] },
        { ...base, name: 'istio-system/pct', chain: [inter.cert, root.cert], cas: [root.cert], spec: { renewBeforePercentage: 50 } },
      ],
    };
    const all = stateFindings(snap, { now: daysFrom(NOW, 16) });
    assert.match(all[0].message, /the CAs here come from the issuers of 3 cert-manager Certificate\(s\)/);
    const bad = all.filter((f) => f.severity !== 'ok').map((f) => [f.severity, f.check, f.fix]);
    assert.deepEqual(bad, [
      ['fail', 'certificate istio-system/pending', 'meshca reconcile --dir /s'],
      ['warn', 'certificate istio-system/no-ca', undefined],
      ['fail', 'certificate istio-system/pct', 'meshca reconcile --dir /s'],
    ]);
    const pct = all.filter((f) => f.check === 'certificate istio-system/pct');
    assert.match(pct[0].message, /chains to ca\.crt "Test Root"/);
    assert.match(pct[1].message, /due for renewal at .*\(renewBeforePercentage 50\)/);
  });

  it('an RA or upstream state: trust-bundle.pem is the reference root, and must hold the root the clusters carry', () => {
    const root = makeRoot();
    const other = makeRoot({ cn: 'Other Root' });
    const snap: StateSnapshot = {
      dir: '/ra',
      rootPath: '/ra/root/root-cert.pem',
      clusters: [],
      failed: [],
      trustBundle: { path: '/ra/trust-bundle.pem', roots: [root.cert] },
    };
    const all = stateFindings(snap, { now: NOW });
    assert.deepEqual(
      all.filter((f) => f.severity !== 'ok'),
      [],
    );
    assert.match(all[0].message, /checking against "Test Root" .*, the root serve gives agents in \/ra\/trust-bundle\.pem$/);
    const inter = makeIntermediate(other, { days: 30 });
    snap.clusters.push({
      name: 'default',
      dir: '/ra/clusters/default/cacerts',
      registered: false,
      caCert: inter.cert,
      chain: [inter.cert, other.cert],
      roots: [other.cert],
    });
    const bad = stateFindings(snap, { now: NOW }).filter((f) => f.severity !== 'ok');
    assert.deepEqual(
      bad.map((f) => f.check),
      ['trust bundle'],
    );
    assert.match(bad[0].message, /does not hold "Other Root", the root the cluster bundles carry/);
  });
});
