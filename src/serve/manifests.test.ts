import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { embeddedControllers } from '../controllers/index.js';
import { CLUSTER, ROOT_TRUST_POLICY } from '../resources/kinds.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { APPLIED_FROM_ANNOTATION, ManifestsWatcher } from './manifests.js';

const policy = (name: string) =>
  `apiVersion: admin.gloo.solo.io/v2\nkind: RootTrustPolicy\nmetadata: {name: ${name}, namespace: gloo-mesh}\nspec:\n  config:\n    mgmtServerCa: {generated: {}}\n`;
const cluster = (name: string, extra = '') =>
  `apiVersion: meshca.io/v1alpha1\nkind: Cluster\nmetadata: {name: ${name}}\nspec: {${extra}}\n`;
const secret = (name: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, namespace: meshca-system}\nstringData: {config: "x"}\n`;

function setup(): { dir: string; state: string; w: ManifestsWatcher; cleanup: () => void; c: ReturnType<typeof embeddedControllers> } {
  const t = tempDir('meshca-manifests-');
  const dir = join(t.path, 'manifests');
  const state = join(t.path, 'state');
  mkdirSync(dir);
  const w = new ManifestsWatcher({ dir, stateDir: state, log: pino({ level: 'silent' }), now: () => new Date(), pollMs: 60_000 });
  return { dir, state, w, c: embeddedControllers(state), cleanup: () => void w.close().then(t.cleanup) };
}

/** A ConfigMap volume: each key a symlink into ..data, itself a symlink to a timestamped directory swapped on update. */
function configMapVolume(dir: string, version: string, files: Record<string, string>): void {
  const v = join(dir, `..${version}`);
  mkdirSync(v);
  for (const [k, text] of Object.entries(files)) writeFileSync(join(v, k), text);
  symlinkSync(`..${version}`, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const k of Object.keys(files)) {
    rmSync(join(dir, k), { force: true });
    symlinkSync(join('..data', k), join(dir, k));
  }
}

test('applies every manifest at start, annotated, and follows a ConfigMap-style symlink swap', async () => {
  const { dir, w, c, cleanup } = setup();
  try {
    configMapVolume(dir, '2026_01', { 'policy.yaml': policy('rtp'), 'clusters.yml': `${cluster('east')}---\n${cluster('west')}` });
    await w.start();
    const east = await c.store.get(CLUSTER, 'east');
    assert.equal(east?.metadata.annotations?.[APPLIED_FROM_ANNOTATION], 'manifests');
    assert.ok(await c.store.get(ROOT_TRUST_POLICY, 'rtp', 'gloo-mesh'));
    assert.deepEqual(w.detail().problems, []);
    assert.equal(w.detail().objects, 3);

    configMapVolume(dir, '2026_02', {
      'policy.yaml': policy('rtp'),
      'clusters.yml': `${cluster('east', 'description: moved')}---\n${cluster('north')}`,
    });
    await w.check();
    assert.equal(((await c.store.get(CLUSTER, 'east'))?.spec as { description?: string }).description, 'moved');
    assert.ok(await c.store.get(CLUSTER, 'north'), 'a cluster added to the ConfigMap');
    assert.equal(await c.store.get(CLUSTER, 'west'), undefined, 'a cluster removed from it is pruned');
  } finally {
    cleanup();
  }
});

test('an invalid file is reported and skipped whole; nothing is pruned meanwhile; objects not from the directory stay', async () => {
  const { dir, w, c, cleanup } = setup();
  try {
    writeFileSync(join(dir, 'a.yaml'), `${cluster('east')}---\n${secret('east-kubeconfig')}`);
    writeFileSync(join(dir, 'b.yaml'), cluster('west'));
    await w.start();
    // Applied by hand (`meshca apply`): not the directory's to prune.
    await c.store.apply(CLUSTER, { apiVersion: 'meshca.io/v1alpha1', kind: 'Cluster', metadata: { name: 'manual' }, spec: {} }, new Date());

    writeFileSync(join(dir, 'a.yaml'), `${cluster('south')}---\n${cluster('east', 'bogus: 1')}`);
    writeFileSync(join(dir, 'c.yaml'), cluster('far', `kubeconfig: {file: ${join(dir, 'absent.kubeconfig')}}`));
    rmSync(join(dir, 'b.yaml'));
    await w.check();
    const problems = w.detail().problems as { file: string; reason: string }[];
    assert.deepEqual(
      problems.map((p) => p.file),
      [join(dir, 'a.yaml'), join(dir, 'c.yaml')],
    );
    assert.match(problems[0].reason, /a\.yaml: document 2 \(Cluster east\): spec\.bogus: unknown field/);
    assert.match(problems[1].reason, /Cluster far: .*absent\.kubeconfig cannot be used/);
    assert.equal(await c.store.get(CLUSTER, 'south'), undefined, 'nothing of an invalid file is stored');
    assert.ok(await c.store.get(CLUSTER, 'west'), 'not pruned while a file is invalid');
    assert.ok(await c.secrets.get({ namespace: 'meshca-system', name: 'east-kubeconfig' }));

    // The kubeconfig arrives (a Secret volume mounted late): the same files apply without an edit.
    writeFileSync(
      join(dir, 'absent.kubeconfig'),
      'apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]\n' +
        'users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n',
    );
    await w.check();
    assert.ok(await c.store.get(CLUSTER, 'far'));
    assert.deepEqual(
      (w.detail().problems as { file: string }[]).map((p) => p.file),
      [join(dir, 'a.yaml')],
    );

    writeFileSync(join(dir, 'a.yaml'), cluster('south'));
    rmSync(join(dir, 'c.yaml'));
    await w.check();
    assert.deepEqual(w.detail().problems, []);
    assert.ok(await c.store.get(CLUSTER, 'south'));
    for (const gone of ['east', 'west', 'far']) assert.equal(await c.store.get(CLUSTER, gone), undefined, `${gone} pruned`);
    assert.equal(await c.secrets.get({ namespace: 'meshca-system', name: 'east-kubeconfig' }), undefined, 'a Secret is pruned too');
    assert.ok(await c.store.get(CLUSTER, 'manual'), 'an object applied by hand is left alone');
  } finally {
    cleanup();
  }
});

test('a directory that cannot be read stops the start with its name', async () => {
  const { dir, w, cleanup } = setup();
  try {
    rmSync(dir, { recursive: true });
    await assert.rejects(w.start(), /the manifests directory .*manifests cannot be read/);
  } finally {
    cleanup();
  }
});
