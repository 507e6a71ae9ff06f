import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { K8sDouble } from '../../test/k8s-double/index.js';
import { parseCertificates } from '../pki/certificate.js';
import { CLUSTER } from '../resources/kinds.js';
import type { Cluster } from '../resources/meshca.js';
import { withTimeout } from '../util/timeout.js';
import { deliveryRetryMs, pendingDeliveries } from './delivery.js';
import type { ControllerContext } from './context.js';
import { gen, withSpec } from './testing/gen.js';
import { harness, type Harness } from './testing/harness.js';

const DAY = 86_400_000;
const T0 = new Date('2030-01-01T00:00:00Z');
const SECRETS = { resource: 'secrets', namespace: 'istio-system' };

describe('cluster delivery controller', () => {
  let double: K8sDouble;
  let h: Harness;
  let now = T0;
  const ctx = (): ControllerContext => ({ ...h, now, dryRun: false, events: [], changed: false });
  const east = () => h.get<Cluster>('Cluster', 'east');
  const remoteCert = () =>
    parseCertificates(
      Buffer.from((double.store.get(SECRETS, 'cacerts')!.data as Record<string, string>)['ca-cert.pem'], 'base64').toString(),
    )[0];
  const writes = () => double.requests.filter((r) => r.method !== 'GET').length;

  before(async () => {
    double = await K8sDouble.start();
    h = harness(() => now);
    const kubeconfig = double.writeKubeconfig(join(h.dir, 'east.kubeconfig'));
    await h.apply(gen.cluster('east', withSpec({ kubeconfig: { file: kubeconfig } })), gen.cluster('local-only'), gen.rootTrustPolicy());
  });
  after(async () => {
    await double.close();
    h.cleanup();
  });

  it('delivers the bundle and records digest, expiry and write time on the Cluster', async () => {
    const r = await h.reconcile(now);
    assert.ok(r.events.some((e) => e.object === 'Cluster east' && e.action === 'delivered'));
    const d = (await east()).status!.delivery!;
    const cert = remoteCert();
    assert.equal(d.serialNumber, cert.serialHex);
    assert.equal(Date.parse(d.notAfter!), cert.notAfter.getTime());
    assert.equal(d.lastWriteTime, '2030-01-01T00:00:00Z');
    assert.equal(d.server, double.url);
    assert.equal(
      (double.store.get(SECRETS, 'cacerts')!.metadata.annotations as Record<string, string>)['meshca.io/bundle-digest'],
      d.digest,
    );
    assert.deepEqual(await pendingDeliveries(ctx()), []);
    assert.equal((await h.get<Cluster>('Cluster', 'local-only')).status?.delivery, undefined, 'no kubeconfig: files only');
  });

  it('writes nothing and leaves status alone while the bundle is unchanged', async () => {
    const rv = (await east()).metadata.resourceVersion;
    const w = writes();
    const r = await h.reconcile(now);
    assert.equal(writes(), w);
    assert.equal((await east()).metadata.resourceVersion, rv);
    assert.equal(r.passes, 1);
  });

  it('records an unreachable API server, retries with backoff, and holds a rotation gate until it is back', async () => {
    await double.pause();
    const delivered = (await east()).status!.delivery!;
    now = new Date(T0.getTime() + 340 * DAY);
    const r = await h.reconcile(now);
    const d = (await east()).status!.delivery!;
    assert.match(d.lastError!, /^reading cluster east \(http:\/\/127\.0\.0\.1:\d+\): secret istio-system\/cacerts: /);
    assert.equal(d.failedAttempts, 1);
    assert.equal(d.digest, delivered.digest, 'the digest is still the one the cluster holds');
    assert.equal(r.nextWakeup?.getTime(), now.getTime() + deliveryRetryMs(1));
    const pending = await pendingDeliveries(ctx());
    assert.deepEqual(
      pending.map((p) => p.cluster),
      ['east'],
    );
    assert.equal(pending[0].error, d.lastError);
    const cond = (await east()).status!.conditions!.find((c) => c.type === 'Delivered')!;
    assert.equal(cond.status, 'False');
    const rv = (await east()).metadata.resourceVersion;
    await h.reconcile(now);
    assert.equal((await east()).metadata.resourceVersion, rv, 'the same failure again does not rewrite status');

    await double.resume();
    await h.reconcile(now);
    const back = (await east()).status!.delivery!;
    assert.equal(back.lastError, undefined);
    assert.equal(back.failedAttempts, undefined);
    assert.notEqual(back.digest, delivered.digest);
    assert.equal(back.serialNumber, remoteCert().serialHex);
    assert.deepEqual(await pendingDeliveries(ctx()), []);
  });

  it('a dry run reports what it would deliver and contacts no API server', async () => {
    await h.store.updateStatus(CLUSTER, { ...(await east()), status: { delivery: {} } });
    const before = double.requests.length;
    const r = await h.reconcile(now, true);
    assert.ok(r.events.some((e) => e.object === 'Cluster east' && e.action === 'would-deliver'));
    assert.equal(double.requests.length, before);
  });

  it('gives up on an API server that does not answer, so one cluster cannot hold the pass', async () => {
    await assert.rejects(withTimeout(new Promise(() => {}), 50, 'no answer'), (e: { code: string; message: string }) => {
      assert.equal(e.code, 'unavailable');
      assert.equal(e.message, 'no answer');
      return true;
    });
    assert.equal(await withTimeout(Promise.resolve('written'), 50, 'no answer'), 'written');
  });

  it('backs off from 10 s, doubling, to at most 5 minutes', () => {
    assert.deepEqual([1, 2, 3, 6, 20].map(deliveryRetryMs), [10_000, 20_000, 40_000, 300_000, 300_000]);
  });
});
