import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { K8sDouble } from '../../test/k8s-double/index.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { CACERTS, FileSecretSink } from '../resources/file-secrets.js';
import { MANAGED_BY_LABEL, OWNER_ANNOTATION } from '../resources/secrets.js';
import { KubeClient } from './client.js';
import { restoreSharedCacerts, SharedCacerts, sharedCacertsSink } from './shared-cacerts.js';

const tmp = tempDir('meshca-shared-cacerts-');
const REF = { namespace: 'meshca-system', name: 'meshca-state' };
let double: K8sDouble;
let shared: SharedCacerts;
const OWNER = 'RootTrustPolicy/gloo-mesh/rtp';
const bundle = (v: string) => ({
  data: Object.fromEntries(['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'root-cert.pem'].map((f) => [f, Buffer.from(`${f} ${v}`)])),
  labels: { [MANAGED_BY_LABEL]: 'meshca' },
  annotations: { [OWNER_ANNOTATION]: OWNER },
});
const keys = () =>
  Object.keys((double.store.get({ resource: 'secrets', namespace: REF.namespace }, REF.name)?.data ?? {}) as object).sort();

before(async () => {
  double = await K8sDouble.start();
  shared = new SharedCacerts(await KubeClient.load({ kubeconfig: double.writeKubeconfig(join(tmp.path, 'kc')) }), REF);
});
after(async () => {
  await double.close();
  tmp.cleanup();
});

test('a leader saves each cluster bundle it writes; the next one restores them with their owner', async () => {
  const term = new AbortController();
  const local = new FileSecretSink(join(tmp.path, 'a'));
  const sink = sharedCacertsSink(local, shared, term.signal);
  // Material of another kind already in the Secret stays untouched.
  double.store.create(
    { resource: 'secrets', namespace: REF.namespace },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: REF.name, namespace: REF.namespace },
      data: { 'intermediate.default.1': 'e30=' },
    },
  );
  assert.equal(await sink.put({ cluster: 'east', ...CACERTS }, bundle('1'), { owner: OWNER }), true);
  assert.equal(await sink.put({ cluster: 'east.prod', ...CACERTS }, bundle('p'), { owner: OWNER }), true);
  // A renewal replaces the saved bundle.
  await sink.put({ cluster: 'east', ...CACERTS }, bundle('2'), { owner: OWNER });
  // A secret that is not a cluster's cacerts stays local.
  await sink.put({ namespace: 'default', name: 'web' }, { data: { 'tls.crt': Buffer.from('x') } }, { user: true });
  assert.deepEqual(keys(), [
    'cluster.east.ca-cert.pem',
    'cluster.east.ca-key.pem',
    'cluster.east.cert-chain.pem',
    'cluster.east.owner',
    'cluster.east.prod.ca-cert.pem',
    'cluster.east.prod.ca-key.pem',
    'cluster.east.prod.cert-chain.pem',
    'cluster.east.prod.owner',
    'cluster.east.prod.root-cert.pem',
    'cluster.east.root-cert.pem',
    'intermediate.default.1',
  ]);

  const next = new FileSecretSink(join(tmp.path, 'b'));
  assert.deepEqual((await restoreSharedCacerts(next, shared)).sort(), ['east', 'east.prod']);
  const east = await next.get({ cluster: 'east', ...CACERTS });
  assert.equal(east?.data['ca-key.pem'].toString(), 'ca-key.pem 2', 'the renewed bundle');
  assert.equal(east?.annotations?.[OWNER_ANNOTATION], OWNER, 'restored with its owner, so the policy keeps it');
  assert.equal((await next.get({ cluster: 'east.prod', ...CACERTS }))?.data['ca-cert.pem'].toString(), 'ca-cert.pem p');

  // Removal: east goes, east.prod (whose keys share east's prefix) stays.
  assert.equal(await sink.delete({ cluster: 'east', ...CACERTS }, { owner: OWNER }), true);
  assert.deepEqual(
    keys().filter((k) => k.startsWith('cluster.')),
    ['ca-cert.pem', 'ca-key.pem', 'cert-chain.pem', 'owner', 'root-cert.pem'].map((f) => `cluster.east.prod.${f}`),
  );

  // A bundle of another owner is refused before anything is saved.
  await assert.rejects(
    sink.put(
      { cluster: 'east.prod', ...CACERTS },
      { ...bundle('x'), annotations: { [OWNER_ANNOTATION]: 'someone-else' } },
      { owner: 'someone-else' },
    ),
    /refusing to replace/,
  );
  // A replica that lost the Lease saves nothing more.
  term.abort();
  await assert.rejects(sink.put({ cluster: 'west', ...CACERTS }, bundle('w'), { owner: OWNER }), /no longer leads/);
  assert.equal(await local.get({ cluster: 'west', ...CACERTS }), undefined, 'nor writes it locally');
});
