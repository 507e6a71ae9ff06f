import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KubeClient } from '../../src/k8s/client.js';
import { CsrSignerController } from '../../src/k8s/signer-controller.js';
import { runWhileLeading } from '../../src/leader/index.js';
import { LeaseElector } from '../../src/leader/lease.js';
import { createCsr } from '../../src/pki/csr.js';
import { generateKeyPair } from '../../src/pki/keys.js';
import { K8sDouble, createCsrObject, csrObject, eventually, issuedChain } from '../k8s-double/index.js';
import { makeIntermediate, makeRoot } from '../helpers/pki.js';
import { tempDir } from '../helpers/tmp.js';

const NS = 'meshca-system';
const tmp = tempDir('meshca-k8s-leader-');
let double: K8sDouble;
const clients: Record<string, KubeClient> = {};

/** Timings scaled down from client-go's 15/10/2 s so that a takeover fits in a test. */
const TIMING = { leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 100 };

/** Every elector a test made: stopped after the tests even when an assertion failed midway. */
const electors: LeaseElector[] = [];

async function elector(identity: string, lease = 'meshca-leader'): Promise<LeaseElector> {
  clients[identity] ??= await KubeClient.load({
    kubeconfig: double.writeKubeconfig(join(tmp.path, `kc-${identity}`), `token-${identity}`),
  });
  double.users.set(`token-${identity}`, identity);
  const e = new LeaseElector({ client: clients[identity], namespace: NS, name: lease, identity, ...TIMING });
  electors.push(e);
  return e;
}

function leaseSpec(name = 'meshca-leader') {
  return double.store.get({ resource: 'leases', namespace: NS }, name)?.spec as
    | { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string; acquireTime?: string; leaseTransitions?: number }
    | undefined;
}

/** Records when each elector started and stopped leading (monotonic ms). */
function track(e: LeaseElector) {
  const t = { started: [] as number[], stopped: [] as number[], signals: [] as AbortSignal[] };
  e.onStartedLeading((s) => {
    t.started.push(performance.now());
    t.signals.push(s);
  });
  e.onStoppedLeading(() => t.stopped.push(performance.now()));
  return t;
}

before(async () => {
  double = await K8sDouble.start();
});
after(async () => {
  // A failed test leaves its electors renewing, which would keep this process alive forever.
  await Promise.all(electors.map((e) => e.stop().catch(() => {})));
  await double.close();
  tmp.cleanup();
});

describe('Lease leader election against the API double', () => {
  it('one of two candidates leads; the lease records holder, duration, times and transitions', async () => {
    const a = await elector('a');
    const b = await elector('b');
    await Promise.all([a.start(), b.start()]);
    let both = 0;
    const end = Date.now() + 800;
    while (Date.now() < end) {
      if (a.isLeader() && b.isLeader()) both++;
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(both, 0, 'never two leaders');
    const leader = a.isLeader() ? a : b;
    assert.ok(leader.isLeader() && !(leader === a ? b : a).isLeader(), 'exactly one leader');
    const s = leaseSpec()!;
    assert.equal(s.holderIdentity, leader.identity);
    assert.equal(s.leaseDurationSeconds, 1);
    assert.match(s.renewTime!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'MicroTime with six fractional digits');
    assert.match(s.acquireTime!, /\.\d{6}Z$/);
    assert.equal(s.leaseTransitions, 0);
    await a.stop();
    await b.stop();
  });

  it('a crashed leader (no release) is replaced after the lease expires; a released lease is taken at once', async () => {
    const a = await elector('c1', 'crash');
    const b = await elector('c2', 'crash');
    await a.start();
    assert.ok(a.isLeader());
    const tb = track(b);
    await b.start();
    assert.ok(!b.isLeader());
    const crashed = performance.now();
    await a.stop({ release: false });
    await eventually(() => b.isLeader(), 5000, 'takeover');
    const waited = tb.started[0] - crashed;
    assert.ok(waited >= 900, `the follower waited for the lease to expire (${Math.round(waited)} ms)`);
    assert.equal(leaseSpec('crash')!.holderIdentity, 'c2');
    assert.equal(leaseSpec('crash')!.leaseTransitions, 1);

    const c = await elector('c3', 'crash');
    const tc = track(c);
    await c.start();
    const released = performance.now();
    await b.stop();
    assert.equal(leaseSpec('crash')!.holderIdentity, '');
    await eventually(() => c.isLeader(), 5000, 'takeover after release');
    assert.ok(tc.started[0] - released < 900, 'no wait for expiry after a release');
    assert.equal(leaseSpec('crash')!.leaseTransitions, 2);
    await c.stop();
  });

  it('a leader that sees another holder stops reconciling at once', async () => {
    const a = await elector('o1', 'other');
    const ta = track(a);
    let ticks = 0;
    let ticksAfterLoss = 0;
    runWhileLeading(a, {
      reconcile: async (signal) => {
        while (!signal.aborted) {
          ticks++;
          await new Promise((r) => setTimeout(r, 5));
        }
      },
    });
    a.onStoppedLeading(() => (ticksAfterLoss = ticks));
    await a.start();
    await eventually(() => ticks > 5);
    // Another replica (with a clock far ahead, say) writes itself in as holder.
    double.store.update({ resource: 'leases', namespace: NS }, 'other', (l) => ({
      ...l,
      spec: { ...(l.spec as object), holderIdentity: 'intruder', renewTime: new Date().toISOString() },
    }));
    await eventually(() => !a.isLeader(), 2000, 'step down');
    assert.ok(ta.signals[0].aborted, 'the term signal is aborted');
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(ticks <= ticksAfterLoss + 1, `no reconcile after losing (${ticks} vs ${ticksAfterLoss})`);
    await a.stop();
  });

  it('a leader that cannot renew steps down before another replica can take over, and its signer stops', async () => {
    const root = makeRoot({ now: new Date(Date.now() - 3_600_000) });
    const inter = makeIntermediate(root, { now: new Date(Date.now() - 3_600_000) });
    const a = await elector('r1', 'renew');
    const b = await elector('r2', 'renew');
    const ta = track(a);
    const tb = track(b);
    const signedBy: { who: string; name: string; at: number }[] = [];
    for (const [e, who] of [
      [a, 'r1'],
      [b, 'r2'],
    ] as const) {
      const ctl = new CsrSignerController({
        client: clients[who],
        signerNames: ['example.com/foo'],
        signer: () => ({ cert: inter.cert, key: inter.key, chain: [root.cert] }),
        policy: { defaultTtlSeconds: 3600, maxTtlSeconds: 86_400, trustDomains: ['cluster.local'] },
        onOutcome: (o) => signedBy.push({ who, name: o.name, at: performance.now() }),
      });
      runWhileLeading(e, { signer: (signal) => ctl.run(signal) });
    }
    await a.start();
    await b.start();
    assert.ok(a.isLeader());
    const pem = () => createCsr({ key: generateKeyPair('ec-p256').privateKey, sans: { dnsNames: ['x.example.com'] } }).pem;
    createCsrObject(double, csrObject('before', pem()));
    double.decide('before', 'Approved');
    await eventually(() => issuedChain(double, 'before'));
    // The controller reports its outcome after its status write, which the double may show first.
    await eventually(() => signedBy.length > 0, 2000, 'outcome of the first signature');
    assert.deepEqual(
      signedBy.map((s) => s.who),
      ['r1'],
    );

    // r1 is cut off from the API server: every lease request fails.
    double.faults.push(({ user, path }) => (user === 'r1' && path.includes('/leases/') ? 503 : undefined));
    await eventually(() => tb.started.length > 0, 5000, 'r2 leads');
    assert.equal(ta.stopped.length, 1, 'r1 stepped down');
    assert.ok(ta.stopped[0] < tb.started[0], 'r1 stopped before r2 started: never two leaders');
    assert.ok(ta.signals[0].aborted);

    createCsrObject(double, csrObject('after', pem()));
    double.decide('after', 'Approved');
    await eventually(() => issuedChain(double, 'after'));
    await eventually(() => signedBy.some((s) => s.name === 'after'), 2000, 'outcome of the second signature');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      signedBy.filter((s) => s.who === 'r1' && s.at > ta.stopped[0]),
      [],
      'no signature by the replica that lost the lease',
    );
    assert.equal(signedBy.find((s) => s.name === 'after')?.who, 'r2');
    double.faults.length = 0;
    await a.stop();
    await b.stop();
  });
});
