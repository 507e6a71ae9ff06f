import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FileResourceStore } from './file-store.js';
import { CERTIFICATE, CLUSTER } from './kinds.js';
import type { ResourceInput } from './meta.js';

const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const now = new Date('2030-01-01T00:00:00Z');

const cert = (spec: Record<string, unknown>, labels?: Record<string, string>): ResourceInput => ({
  apiVersion: 'cert-manager.io/v1',
  kind: 'Certificate',
  metadata: { name: 'istio-ca', namespace: 'istio-system', ...(labels ? { labels } : {}) },
  spec,
});

describe('FileResourceStore', () => {
  const store = new FileResourceStore(dir);

  it('creates, keeps unchanged objects untouched, and bumps generation on spec change only', async () => {
    const a = await store.apply(CERTIFICATE, cert({ secretName: 'cacerts', commonName: 'x' }), now);
    assert.equal(a.outcome, 'created');
    assert.equal(a.object.metadata.generation, 1);
    const path = join(dir, 'resources', 'certificates.cert-manager.io', 'istio-system', 'istio-ca.json');
    assert.ok(existsSync(path));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const mtime = statSync(path).mtimeMs;
    // Key order does not matter: the same spec is unchanged.
    const b = await store.apply(CERTIFICATE, cert({ commonName: 'x', secretName: 'cacerts' }), now);
    assert.equal(b.outcome, 'unchanged');
    assert.equal(statSync(path).mtimeMs, mtime);
    const c = await store.apply(CERTIFICATE, cert({ commonName: 'x', secretName: 'cacerts' }, { team: 'mesh' }), now);
    assert.equal(c.outcome, 'configured');
    assert.equal(c.object.metadata.generation, 1);
    const d = await store.apply(CERTIFICATE, cert({ commonName: 'y', secretName: 'cacerts' }, { team: 'mesh' }), now);
    assert.equal(d.outcome, 'configured');
    assert.equal(d.object.metadata.generation, 2);
    assert.equal(d.object.metadata.uid, a.object.metadata.uid);
  });

  it('writes status only through updateStatus, guarded by resourceVersion, and skips no-op writes', async () => {
    const o = (await store.get(CERTIFICATE, 'istio-ca', 'istio-system'))!;
    const s1 = await store.updateStatus(CERTIFICATE, { ...o, status: { revision: 1 } });
    assert.equal(Number(s1.metadata.resourceVersion), Number(o.metadata.resourceVersion) + 1);
    const s2 = await store.updateStatus(CERTIFICATE, { ...s1, status: { revision: 1 } });
    assert.equal(s2.metadata.resourceVersion, s1.metadata.resourceVersion);
    await assert.rejects(store.updateStatus(CERTIFICATE, { ...o, status: { revision: 2 } }), /modified concurrently/);
    // apply keeps the status
    const again = await store.apply(CERTIFICATE, cert({ commonName: 'z', secretName: 'cacerts' }), now);
    assert.deepEqual(again.object.status, { revision: 1 });
    assert.deepEqual(
      JSON.parse(readFileSync(join(dir, 'resources', 'certificates.cert-manager.io', 'istio-system', 'istio-ca.json'), 'utf8')).status,
      { revision: 1 },
    );
  });

  it('lists across namespaces sorted, handles cluster-scoped kinds, deletes', async () => {
    await store.apply(CERTIFICATE, { ...cert({}), metadata: { name: 'a', namespace: 'default' } }, now);
    assert.deepEqual(
      (await store.list(CERTIFICATE)).map((o) => `${o.metadata.namespace}/${o.metadata.name}`),
      ['default/a', 'istio-system/istio-ca'],
    );
    assert.equal((await store.list(CERTIFICATE, 'default')).length, 1);
    await store.apply(CLUSTER, { apiVersion: 'meshca.io/v1alpha1', kind: 'Cluster', metadata: { name: 'east' }, spec: {} }, now);
    assert.ok(existsSync(join(dir, 'resources', 'clusters.meshca.io', 'east.json')));
    assert.equal((await store.list(CLUSTER)).length, 1);
    assert.equal(await store.delete(CLUSTER, 'east'), true);
    assert.equal(await store.delete(CLUSTER, 'east'), false);
  });
});
