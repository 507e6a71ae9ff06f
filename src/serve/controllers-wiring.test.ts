import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { embeddedControllers } from '../controllers/index.js';
import { apiVersionOf, CLUSTER, ROOT_TRUST_POLICY } from '../resources/kinds.js';
import { K8sDouble } from '../../test/k8s-double/index.js';
import type { Cluster } from '../resources/meshca.js';
import { wireControllers } from './controllers-wiring.js';

/** A leadership the test hands out and takes back. */
function fakeLeader() {
  const cbs: ((s: AbortSignal) => void)[] = [];
  let term: AbortController | undefined;
  return {
    onLeader: (cb: (s: AbortSignal) => void) => void cbs.push(cb),
    lead() {
      term = new AbortController();
      for (const cb of cbs) cb(term.signal);
    },
    lose() {
      term?.abort(new Error('lost the lease'));
    },
  };
}

/** A generated RootTrustPolicy with small keys, as `meshca apply` would store it. */
function applyPolicy(cli: ReturnType<typeof embeddedControllers>, now: Date) {
  return cli.store.apply(
    ROOT_TRUST_POLICY,
    {
      apiVersion: apiVersionOf(ROOT_TRUST_POLICY),
      kind: ROOT_TRUST_POLICY.kind,
      metadata: { name: 'rtp', namespace: 'gloo-mesh' },
      spec: { config: { mgmtServerCa: { generated: { rsaKeySizeBytes: 2048 } }, intermediateCertOptions: { rsaKeySizeBytes: 2048 } } },
    },
    now,
  );
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(f: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error('timed out');
    await wait(50);
  }
}

test(
  'controllers run only while leading: a change applied by another process is reconciled while leading, not after the term ends',
  { timeout: 30_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshca-ctl-wiring-'));
    const cli = embeddedControllers(dir); // plays `meshca apply` from another process
    const now = new Date();
    const cluster = (name: string) =>
      cli.store.apply(CLUSTER, { apiVersion: apiVersionOf(CLUSTER), kind: CLUSTER.kind, metadata: { name }, spec: {} }, now);
    await applyPolicy(cli, now);
    await cluster('east');
    const bundle = (c: string) => existsSync(join(dir, 'clusters', c, 'cacerts', 'ca-cert.pem'));
    const written: string[] = [];
    const leader = fakeLeader();
    const wiring = wireControllers({
      dir,
      leader,
      log: pino({ level: 'silent' }),
      now: () => new Date(),
      onCacertsWrite: (c) => written.push(c),
      resourcePollMs: 100,
    });
    try {
      await wait(300);
      assert.equal(bundle('east'), false, 'nothing before leading');
      leader.lead();
      await until(() => bundle('east'));
      assert.deepEqual(written, ['east'], 'the in-process write is reported for the reload');
      // Another process registers a cluster: picked up without waiting for the maximum interval.
      await cluster('west');
      await until(() => bundle('west'));
      leader.lose();
      await wait(200);
      await cluster('north');
      await wait(1000);
      assert.equal(bundle('north'), false, 'no pass after leadership was lost');
      leader.lead();
      await until(() => bundle('north'));
    } finally {
      await wiring.close();
    }
  },
);

test(
  "the leader delivers each cluster's cacerts, and retries on its own once an API server that was down is back",
  { timeout: 60_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshca-ctl-delivery-'));
    const double = await K8sDouble.start();
    const token = 'serve-log-s3cr3t-token';
    const kubeconfig = double.writeKubeconfig(join(dir, 'east.kubeconfig'), token);
    const cli = embeddedControllers(dir);
    const now = new Date();
    await applyPolicy(cli, now);
    await double.pause();
    await cli.store.apply(
      CLUSTER,
      { apiVersion: apiVersionOf(CLUSTER), kind: CLUSTER.kind, metadata: { name: 'east' }, spec: { kubeconfig: { file: kubeconfig } } },
      now,
    );
    const logs: string[] = [];
    const leader = fakeLeader();
    const wiring = wireControllers({
      dir,
      leader,
      log: pino({ level: 'info' }, { write: (line: string) => void logs.push(line) }),
      now: () => new Date(),
      resourcePollMs: 100,
    });
    const delivery = async () => (await cli.store.get<Cluster>(CLUSTER, 'east'))?.status?.delivery;
    const remote = () => double.store.get({ resource: 'secrets', namespace: 'istio-system' }, 'cacerts');
    try {
      leader.lead();
      let failed: string | undefined;
      await until(() => {
        void delivery().then((d) => (failed = d?.lastError));
        return failed !== undefined;
      }, 20_000);
      assert.match(failed!, /ECONNREFUSED/);
      assert.ok(
        logs.some((l) => l.includes('delivery-failed')),
        'the failure is logged',
      );
      await double.resume();
      // No resource changes meanwhile: the retry wakeup alone brings the pass.
      await until(() => remote() !== undefined, 30_000);
      let cleared = false;
      await until(() => {
        void delivery().then((d) => (cleared = !!d?.digest && d.lastError === undefined));
        return cleared;
      });
      assert.ok(logs.some((l) => l.includes('"action":"delivered"')));
      assert.ok(!logs.join('').includes(token), 'the kubeconfig token is never logged');
    } finally {
      await wiring.close();
      await double.close();
    }
  },
);
