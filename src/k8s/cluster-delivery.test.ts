import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { K8sDouble, type KubeObject } from '../../test/k8s-double/index.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { dataDigest, MANAGED_BY_LABEL, OWNER_ANNOTATION } from '../resources/secrets.js';
import { KubeClient } from './client.js';
import { clusterClient } from './cluster-client.js';
import { DELIVERY_OWNER, DIGEST_ANNOTATION, writeCacerts } from './cluster-delivery.js';

const tmp = tempDir('meshca-delivery-unit-');
let double: K8sDouble;
let client: KubeClient;
let kubeconfig: string;
const SECRETS = { resource: 'secrets', namespace: 'istio-system' };
const data = (v: string) => ({ 'ca-cert.pem': Buffer.from(`CERT ${v}`), 'ca-key.pem': Buffer.from(`KEY ${v}`) });
const stored = () => double.store.get(SECRETS, 'cacerts');
const decoded = (o: KubeObject) =>
  Object.fromEntries(Object.entries(o.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
const writes = () => double.requests.filter((r) => (r.method === 'PUT' || r.method === 'POST') && r.path.includes('/secrets')).length;

before(async () => {
  double = await K8sDouble.start();
  kubeconfig = double.writeKubeconfig(join(tmp.path, 'kubeconfig'), 'sekrit-token-123');
  client = await KubeClient.load({ kubeconfig });
});
after(async () => {
  await double.close();
  tmp.cleanup();
});

describe('writeCacerts', () => {
  it('creates the Secret with the data, the managed-by label and the digest, then writes nothing while it is current', async () => {
    const r = await writeCacerts(client, data('1'), { cluster: 'east' });
    assert.deepEqual(r, { outcome: 'created', digest: dataDigest(data('1')) });
    const s = stored()!;
    assert.deepEqual(decoded(s), { 'ca-cert.pem': 'CERT 1', 'ca-key.pem': 'KEY 1' });
    assert.equal(s.type, 'Opaque');
    assert.equal((s.metadata.labels as Record<string, string>)[MANAGED_BY_LABEL], 'meshca');
    const ann = s.metadata.annotations as Record<string, string>;
    assert.equal(ann[OWNER_ANNOTATION], DELIVERY_OWNER);
    assert.equal(ann[DIGEST_ANNOTATION], r.digest);
    const before = writes();
    assert.equal((await writeCacerts(client, data('1'), { cluster: 'east' })).outcome, 'unchanged');
    assert.equal(writes(), before, 'no write for an unchanged digest');
  });

  it('replaces its own Secret with the resourceVersion it read, and repairs data edited behind its back', async () => {
    const rv = stored()!.metadata.resourceVersion;
    assert.equal((await writeCacerts(client, data('2'), { cluster: 'east' })).outcome, 'updated');
    assert.notEqual(stored()!.metadata.resourceVersion, rv);
    assert.equal(decoded(stored()!)['ca-cert.pem'], 'CERT 2');
    double.store.update(SECRETS, 'cacerts', (o) => ({ ...o, data: { 'ca-cert.pem': Buffer.from('EDITED').toString('base64') } }));
    assert.equal((await writeCacerts(client, data('2'), { cluster: 'east' })).outcome, 'updated');
    assert.equal(decoded(stored()!)['ca-cert.pem'], 'CERT 2');
  });

  it('reports a concurrent change as a conflict instead of overwriting it', async () => {
    let raced = false;
    double.faults.push((r) => {
      if (!raced && r.method === 'PUT' && r.path.endsWith('/secrets/cacerts')) {
        raced = true;
        double.store.update(SECRETS, 'cacerts', (o) => ({ ...o, data: { 'ca-cert.pem': Buffer.from('RACE').toString('base64') } }));
      }
      return undefined;
    });
    try {
      await assert.rejects(writeCacerts(client, data('3'), { cluster: 'east' }), (e: { reason: string; message: string }) => {
        assert.equal(e.reason, 'secret_conflict');
        assert.match(e.message, /cluster east .*istio-system\/cacerts changed while meshca was writing it/);
        return true;
      });
      assert.equal(decoded(stored()!)['ca-cert.pem'], 'RACE', 'the concurrent write stands');
    } finally {
      double.faults.length = 0;
    }
  });

  it('leaves a cacerts meshca did not create alone unless adoption is asked, then replaces it in place', async () => {
    double.store.delete(SECRETS, 'cacerts');
    double.store.create(SECRETS, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'cacerts', labels: { team: 'mesh' } },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': Buffer.from('HAND').toString('base64') },
    });
    await assert.rejects(writeCacerts(client, data('4'), { cluster: 'west' }), (e: { reason: string; message: string }) => {
      assert.equal(e.reason, 'secret_not_owned');
      assert.match(e.message, /cluster west .*was not created by meshca.*--adopt-existing/);
      return true;
    });
    assert.deepEqual(decoded(stored()!), { 'tls.crt': 'HAND' }, 'untouched');
    double.store.update(SECRETS, 'cacerts', (o) => ({ ...o, metadata: { ...o.metadata, annotations: { [OWNER_ANNOTATION]: 'someone' } } }));
    await assert.rejects(writeCacerts(client, data('4'), { cluster: 'west' }), /is managed by someone/);
    const uid = stored()!.metadata.uid;
    assert.equal((await writeCacerts(client, data('4'), { cluster: 'west', adopt: true })).outcome, 'updated');
    const s = stored()!;
    assert.equal(s.metadata.uid, uid, 'replaced, not deleted and re-created');
    assert.equal(s.type, 'kubernetes.io/tls', 'the type is kept');
    assert.equal((s.metadata.labels as Record<string, string>).team, 'mesh', 'its labels are kept');
    assert.equal((s.metadata.annotations as Record<string, string>)[OWNER_ANNOTATION], DELIVERY_OWNER);
    assert.equal((await writeCacerts(client, data('4'), { cluster: 'west' })).outcome, 'unchanged', 'meshca owns it from then on');
  });

  it('names the cluster and the server when the API server cannot be reached', async () => {
    const down = await K8sDouble.start();
    const c = await KubeClient.load({ kubeconfig: down.writeKubeconfig(join(tmp.path, 'down')) });
    await down.close();
    await assert.rejects(writeCacerts(c, data('5'), { cluster: 'far' }), (e: { code: string; message: string }) => {
      assert.equal(e.code, 'unavailable');
      assert.ok(e.message.startsWith(`reading cluster far (${down.url}): secret istio-system/cacerts`), e.message);
      return true;
    });
  });
});

describe('clusterClient', () => {
  const none = async () => undefined;

  it('loads a kubeconfig file, with its context when one is named', async () => {
    const c = await clusterClient('east', { file: kubeconfig, context: 'double' }, none);
    assert.equal(c.server, double.url);
  });

  it('refuses an unknown context, listing the known ones', async () => {
    await assert.rejects(
      clusterClient('east', { file: kubeconfig, context: 'nope' }, none),
      /context "nope" not found \(contexts: double\)/,
    );
  });

  it('refuses an unreadable or invalid file without quoting its content', async () => {
    await assert.rejects(clusterClient('east', { file: join(tmp.path, 'missing') }, none), /kubeconfig .*missing cannot be used: ENOENT/);
    const bad = join(tmp.path, 'bad');
    writeFileSync(bad, 'users:\n- name: x\n  user: { token: leaked-token-456 }\n   bad: [indent\n');
    await assert.rejects(clusterClient('east', { file: bad }, none), (e: Error) => {
      assert.match(e.message, /kubeconfig .*bad cannot be used/);
      assert.doesNotMatch(e.message, /leaked-token-456/);
      return true;
    });
  });

  it('reads a kubeconfig from a Secret in the state, and names a missing Secret or key', async () => {
    const text = Buffer.from(
      double.writeKubeconfig(join(tmp.path, 'from-secret')) && (await import('node:fs')).readFileSync(join(tmp.path, 'from-secret')),
    );
    const secret = async (ref: { namespace: string; name: string }) =>
      ref.namespace === 'default' && ref.name === 'east-kube' ? { ref, data: { kubeconfig: text }, version: 1 } : undefined;
    const c = await clusterClient('east', { secretRef: { name: 'east-kube' } }, secret);
    assert.equal(c.server, double.url);
    await assert.rejects(
      clusterClient('east', { secretRef: { name: 'other' } }, secret),
      /cluster east: kubeconfig secret default\/other not found/,
    );
    await assert.rejects(
      clusterClient('east', { secretRef: { name: 'east-kube', key: 'config' } }, secret),
      /secret default\/east-kube has no key "config" \(keys: kubeconfig\)/,
    );
  });
});
