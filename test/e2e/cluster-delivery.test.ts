import assert from 'node:assert/strict';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { parseCertificates } from '../../src/pki/certificate.js';
import { ROTATION_PHASES } from '../../src/resources/meshca.js';
import { K8sDouble, type KubeObject } from '../k8s-double/index.js';
import { opensslVerify } from '../helpers/openssl.js';
import { runMeshca, type RunResult } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { rootTrustPolicyYaml } from './reload-helpers.js';

const KEYS = ['ca-cert.pem', 'ca-key.pem', 'ca.crt', 'cert-chain.pem', 'root-cert.pem', 'tls.crt', 'tls.key'];
const TOKENS = { east: 'east-bearer-s3cr3t-5b1c', west: 'west-bearer-s3cr3t-9e4d', north: 'north-bearer-s3cr3t-77aa' };
const SECRETS = { resource: 'secrets', namespace: 'istio-system' };

describe('delivery of each cluster bundle to its API server (two API doubles as two clusters)', () => {
  const tmp = tempDir('meshca-delivery-');
  const dir = join(tmp.path, 'state');
  const output: string[] = [];
  const doubles: Record<string, K8sDouble> = {};
  const kubeconfigs: Record<string, string> = {};
  const meshca = async (args: string[]): Promise<RunResult> => {
    const r = await runMeshca([...args, '--dir', dir], { timeoutMs: 60_000 });
    output.push(r.stdout, r.stderr);
    return r;
  };
  const ok = async (args: string[]): Promise<RunResult> => {
    const r = await meshca(args);
    assert.equal(r.code, 0, `meshca ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  /** apply and reconcile exit 8 while a cluster's bundle cannot be delivered, and name it. */
  const westDown = async (args: string[]): Promise<RunResult> => {
    const r = await meshca(args);
    assert.equal(r.code, 8, `meshca ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /^ {2}Cluster west: DeliveryFailed: reading cluster west \(http:\/\/127\.0\.0\.1:\d+\)/m);
    return r;
  };
  const write = (name: string, text: string): string => {
    const f = join(tmp.path, name);
    writeFileSync(f, text);
    return f;
  };
  const remote = (c: string): KubeObject | undefined => doubles[c].store.get(SECRETS, 'cacerts');
  const remoteData = (c: string): Record<string, string> =>
    Object.fromEntries(Object.entries(remote(c)!.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
  const remoteRoots = (c: string) => parseCertificates(remoteData(c)['root-cert.pem']).map((r) => r.fingerprint256);
  const clusters = async (): Promise<Record<string, { delivery?: Record<string, string | number> }>> => {
    const list = JSON.parse((await ok(['get', 'clusters', '-o', 'json'])).stdout) as {
      items: { metadata: { name: string }; status?: object }[];
    };
    return Object.fromEntries(list.items.map((i) => [i.metadata.name, i.status ?? {}]));
  };

  /** The delivered Secret, checked with openssl and node:crypto as istiod would use it. */
  function checkBundle(c: string, attime?: Date): void {
    const d = remoteData(c);
    assert.deepEqual(Object.keys(d).sort(), KEYS, `${c}: the seven keys`);
    const out = join(tmp.path, `check-${c}`);
    mkdirSync(out, { recursive: true });
    for (const [k, v] of Object.entries(d)) writeFileSync(join(out, k), v);
    const extra = attime ? ['-attime', String(Math.floor(attime.getTime() / 1000))] : [];
    const v = opensslVerify(join(out, 'root-cert.pem'), join(out, 'ca-cert.pem'), join(out, 'cert-chain.pem'), extra);
    assert.equal(v.code, 0, `${c}: ${v.stdout}${v.stderr}`);
    const tls = opensslVerify(join(out, 'ca.crt'), join(out, 'tls.crt'), join(out, 'tls.crt'), extra);
    assert.equal(tls.code, 0, `${c} cert-manager layout: ${tls.stdout}${tls.stderr}`);
    const cert = new X509Certificate(d['ca-cert.pem']);
    assert.ok(cert.ca);
    const spki = (k: ReturnType<typeof createPublicKey>) => k.export({ type: 'spki', format: 'der' }).toString('hex');
    assert.equal(spki(createPublicKey(d['ca-key.pem'])), spki(cert.publicKey), `${c}: ca-key.pem matches ca-cert.pem`);
    assert.equal(d['tls.key'], d['ca-key.pem']);
    assert.equal(new X509Certificate(d['tls.crt']).fingerprint256, cert.fingerprint256, 'tls.crt starts with the intermediate');
    assert.equal(d['ca.crt'], d['root-cert.pem']);
    const local = join(dir, 'clusters', c, 'cacerts');
    for (const k of ['ca-cert.pem', 'cert-chain.pem', 'root-cert.pem'])
      assert.equal(d[k], readFileSync(join(local, k), 'utf8'), `${c}: ${k} is the local bundle's`);
  }

  before(async () => {
    for (const c of ['east', 'west', 'north'] as const) {
      doubles[c] = await K8sDouble.start();
      kubeconfigs[c] = doubles[c].writeKubeconfig(join(tmp.path, `${c}.kubeconfig`), TOKENS[c]);
    }
  });
  after(async () => {
    await Promise.all(Object.values(doubles).map((d) => d.close()));
    tmp.cleanup();
  });

  it('refuses a kubeconfig that cannot be used and stores no Cluster', async () => {
    const missing = await meshca(['cluster', 'add', 'bad', '--kubeconfig', join(tmp.path, 'nope.kubeconfig')]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /kubeconfig .*nope\.kubeconfig cannot be used: ENOENT/);
    const ctx = await meshca(['cluster', 'add', 'bad', '--kubeconfig', kubeconfigs.east, '--context', 'prod']);
    assert.notEqual(ctx.code, 0);
    assert.match(ctx.stderr, /context "prod" not found \(contexts: double\)/);
    const garbled = write('garbled.kubeconfig', `users:\n- name: x\n  user: { token: ${TOKENS.east} }\n   oops: [\n`);
    const bad = await meshca(['cluster', 'add', 'bad', '--kubeconfig', garbled]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /garbled\.kubeconfig cannot be used/);
    const manifest = write(
      'bad-cluster.yaml',
      'apiVersion: meshca.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: bad\nspec:\n  kubeconfig:\n    secretRef: {name: absent}\n',
    );
    const applied = await meshca(['apply', '-f', manifest]);
    assert.notEqual(applied.code, 0);
    assert.match(applied.stderr, /Cluster bad: cluster bad: kubeconfig secret default\/absent not found/);
    // Nothing was stored, not even a state directory.
    assert.equal(existsSync(dir), false);
  });

  it('writes istio-system/cacerts with all seven keys to both clusters, and get clusters shows it', async () => {
    await ok(['cluster', 'add', 'east', '--kubeconfig', kubeconfigs.east, '--context', 'double', '--no-reconcile']);
    // west's kubeconfig is held in a Secret of meshca's state, referenced by the Cluster manifest.
    const westKube = Buffer.from(readFileSync(kubeconfigs.west)).toString('base64');
    const manifest = write(
      'west.yaml',
      `apiVersion: v1\nkind: Secret\nmetadata:\n  name: west-kubeconfig\n  namespace: meshca-system\ndata:\n  config: ${westKube}\n---\n` +
        'apiVersion: meshca.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: west\nspec:\n  kubeconfig:\n' +
        '    secretRef: {name: west-kubeconfig, namespace: meshca-system, key: config}\n',
    );
    await ok(['apply', '-f', manifest, '--no-reconcile']);
    await ok(['apply', '-f', write('policy.yaml', rootTrustPolicyYaml())]);
    for (const c of ['east', 'west']) checkBundle(c);
    assert.deepEqual(remoteRoots('east'), remoteRoots('west'), 'one root for both');
    const status = await clusters();
    for (const c of ['east', 'west']) {
      const d = status[c].delivery!;
      const ann = remote(c)!.metadata.annotations as Record<string, string>;
      assert.equal(ann['meshca.io/bundle-digest'], d.digest);
      assert.equal(ann['meshca.io/owner'], 'meshca/cluster-delivery');
      assert.equal(d.server, doubles[c].url);
      assert.equal(Date.parse(d.notAfter as string), Date.parse(new X509Certificate(remoteData(c)['ca-cert.pem']).validTo));
      assert.equal(d.lastError, undefined);
    }
    const table = (await ok(['get', 'clusters'])).stdout;
    for (const c of ['east', 'west'])
      assert.match(
        table,
        new RegExp(`^${c}\\s+\\S+\\s+Delivered\\s+${String(status[c].delivery!.digest).slice(0, 12)}\\s+\\S+Z\\s+\\S+Z`, 'm'),
      );
    const list = (await ok(['cluster', 'list'])).stdout;
    assert.match(list, /DELIVERY\s+DIGEST\s+EXPIRES\s+LAST WRITE\s+LAST ERROR/);
    assert.match(list, new RegExp(`^west\\s.*Delivered\\s+${String(status.west.delivery!.digest).slice(0, 12)}`, 'm'));
    const writes = () => Object.values(doubles).flatMap((d) => d.requests.filter((r) => r.method !== 'GET')).length;
    const before = writes();
    await ok(['reconcile']);
    assert.equal(writes(), before, 'an unchanged bundle is not written again');
  });

  it('leaves a cacerts meshca did not create alone, says so, and replaces it once adoption is set', async () => {
    doubles.north.store.create(SECRETS, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'cacerts' },
      type: 'Opaque',
      data: { 'ca-cert.pem': Buffer.from('HAND-MADE').toString('base64') },
    });
    const left = await meshca(['cluster', 'add', 'north', '--kubeconfig', kubeconfigs.north]);
    assert.equal(left.code, 8, 'cluster add reports the undelivered bundle as apply does');
    assert.match(left.stderr, /^ {2}Cluster north: DeliveryFailed: .*was not created by meshca/m);
    assert.deepEqual(remoteData('north'), { 'ca-cert.pem': 'HAND-MADE' });
    const d = (await clusters()).north.delivery!;
    assert.match(String(d.lastError), /secret istio-system\/cacerts exists and was not created by meshca; it is left alone/);
    assert.match((await ok(['get', 'clusters'])).stdout, /^north\s+\S+\s+Failing\s.*was not created by meshca/m);
    await ok(['cluster', 'add', 'north', '--kubeconfig', kubeconfigs.north, '--adopt-existing']);
    checkBundle('north');
    assert.equal((await clusters()).north.delivery!.lastError, undefined);
    await ok(['cluster', 'remove', 'north']);
  });

  it('never prints or logs the credentials', async () => {
    await ok(['get', 'clusters', '-o', 'yaml']);
    await ok(['get', 'cluster', 'west', '-o', 'json']);
    await ok(['get', 'clusters', '-o', 'wide']);
    const spec = parseYaml((await ok(['get', 'cluster', 'east', '-o', 'yaml'])).stdout).spec;
    assert.deepEqual(spec, { kubeconfig: { file: kubeconfigs.east, context: 'double' } }, 'a reference only');
    const all = output.join('\n');
    for (const t of Object.values(TOKENS)) assert.ok(!all.includes(t), `a token appeared in meshca's output`);
  });

  it('a root rotation waits for a cluster whose API server is down, says so, and completes once it is back', async () => {
    const oldRoot = remoteRoots('east')[0];
    await doubles.west.pause();
    const rotation = write(
      'rotation.yaml',
      'apiVersion: meshca.io/v1alpha1\nkind: RootRotation\nmetadata:\n  name: rotate\nspec:\n  rootTrustPolicyRef: {name: root-trust-policy}\n' +
        '  newRoot: {generated: {rsaKeySizeBytes: 2048}}\n  workloadRenewalWindow: 2s\n',
    );
    await westDown(['apply', '-f', rotation]);
    await westDown(['reconcile']);
    const rot = async () => parseYaml((await ok(['get', 'rootrotation', 'rotate', '-o', 'yaml'])).stdout).status as Record<string, string>;
    let s = await rot();
    assert.equal(s.phase, 'NewRootCreated', s.message);
    assert.match(s.message, /^waiting for delivery to cluster west \(reading cluster west \(http:\/\/127\.0\.0\.1:\d+\).*\)/);
    assert.equal(remoteRoots('east').length, 2, 'east already carries both roots');
    assert.deepEqual(remoteRoots('west'), [oldRoot], 'west, being down, still has the old bundle');
    assert.match((await ok(['get', 'clusters'])).stdout, /^west\s+\S+\s+Failing\s/m);
    await sleep(2100);
    await westDown(['reconcile']);
    s = await rot();
    assert.equal(s.phase, 'NewRootCreated', 'still waiting, whatever the clock says');

    await doubles.west.resume();
    const deadline = Date.now() + 60_000;
    while (s.phase !== 'Complete') {
      assert.ok(Date.now() < deadline, `rotation stuck at ${s.phase}: ${s.message}`);
      await ok(['reconcile']);
      s = await rot();
      if (s.phase !== 'Complete') await sleep(500);
    }
    const history = (
      parseYaml((await ok(['get', 'rootrotation', 'rotate', '-o', 'yaml'])).stdout).status.history as { phase: string }[]
    ).map((h) => h.phase);
    assert.deepEqual(history, ROTATION_PHASES.slice(1), 'every phase once, none skipped');
    for (const c of ['east', 'west']) {
      assert.deepEqual(remoteRoots(c), [s.newRootFingerprint]);
      checkBundle(c);
      assert.equal((await clusters())[c].delivery!.lastError, undefined);
    }
  });

  it('renewal rewrites both clusters with the resourceVersion read', async () => {
    const serial = (c: string) => new X509Certificate(remoteData(c)['ca-cert.pem']).serialNumber;
    const before = { east: serial('east'), west: serial('west') };
    const at = new Date(Date.now() + 340 * 86_400_000);
    await ok(['reconcile', '--at', at.toISOString(), '--allow-future-material']);
    for (const c of ['east', 'west'] as const) {
      assert.notEqual(serial(c), before[c], `${c} renewed`);
      checkBundle(c, at);
      const d = (await clusters())[c].delivery!;
      assert.equal(Date.parse(d.lastWriteTime as string), at.getTime(), 'written at the reconcile time');
      assert.equal((remote(c)!.metadata.annotations as Record<string, string>)['meshca.io/bundle-digest'], d.digest);
      assert.ok(doubles[c].requests.some((r) => r.method === 'PUT' && r.path === '/api/v1/namespaces/istio-system/secrets/cacerts'));
    }
  });
});
