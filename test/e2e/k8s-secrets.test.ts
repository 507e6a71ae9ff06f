import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tokenReviewVerifier } from '../../src/auth/token-review.js';
import { CaState } from '../../src/ca/state.js';
import { KubeClient } from '../../src/k8s/client.js';
import { IstioPublisher, PUBLISHER_OWNER } from '../../src/k8s/istio-publisher.js';
import { KubeSecretSink } from '../../src/k8s/secret-sink.js';
import { SecretStateBackend } from '../../src/k8s/state-secret.js';
import { OWNER_ANNOTATION, type SecretChange } from '../../src/resources/secrets.js';
import { K8sDouble } from '../k8s-double/index.js';
import { makeIntermediate, makeRoot } from '../helpers/pki.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('meshca-k8s-secrets-');
let double: K8sDouble;
let client: KubeClient;
let kubeconfig: string;
const secrets = { resource: 'secrets', namespace: 'istio-system' };
const b = (s: string) => Buffer.from(s);

before(async () => {
  double = await K8sDouble.start();
  kubeconfig = double.writeKubeconfig(join(tmp.path, 'kubeconfig'));
  client = await KubeClient.load({ kubeconfig });
});
after(async () => {
  await double.close();
  tmp.cleanup();
});

describe('KubeSecretSink: the override rule on Kubernetes Secrets', () => {
  const owner = { owner: 'Certificate/istio-system/istio-ca' };
  const content = (crt: string, o = owner.owner) => ({
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b(crt), 'tls.key': b('KEY'), 'ca.crt': b('CA') },
    annotations: { [OWNER_ANNOTATION]: o },
  });

  it('creates, skips an identical write, replaces its own secret with the resourceVersion read, and notifies', async () => {
    const sink = new KubeSecretSink({ client });
    const changes: SecretChange[] = [];
    sink.onChange((c) => changes.push(c));
    const ref = { namespace: 'istio-system', name: 'owned' };
    assert.equal(await sink.put(ref, content('CRT1'), owner), true);
    const stored = double.store.get(secrets, 'owned')!;
    assert.equal(stored.type, 'kubernetes.io/tls');
    assert.equal(Buffer.from((stored.data as Record<string, string>)['tls.crt'], 'base64').toString(), 'CRT1');
    const puts = () => double.requests.filter((r) => r.method === 'PUT' && r.path.endsWith('/secrets/owned')).length;
    assert.equal(await sink.put(ref, content('CRT1'), owner), false, 'same content: nothing written');
    assert.equal(puts(), 0);
    assert.equal(await sink.put(ref, content('CRT2'), owner), true);
    assert.equal(puts(), 1);
    assert.equal((await sink.get(ref))!.data['tls.crt'].toString(), 'CRT2');
    assert.equal(changes.length, 2);
    assert.deepEqual(
      (await sink.list('istio-system')).map((s) => s.ref.name),
      ['owned'],
    );
    assert.equal(await sink.delete(ref, owner), true);
    assert.equal(double.store.get(secrets, 'owned'), undefined);
    assert.ok(changes.at(-1)!.deleted);
  });

  it("never replaces or deletes a hand-made secret or another owner's, unless override is set", async () => {
    double.store.create(secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'cacerts' },
      type: 'Opaque',
      data: { 'ca-cert.pem': b('HAND').toString('base64') },
    } as never);
    double.store.create(secrets, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'theirs', annotations: { [OWNER_ANNOTATION]: 'someone-else' } },
      data: {},
    } as never);
    const sink = new KubeSecretSink({ client });
    const ref = { namespace: 'istio-system', name: 'cacerts' };
    await assert.rejects(sink.put(ref, content('X'), owner), (e: { reason: string; message: string }) => {
      assert.equal(e.reason, 'secret_not_owned');
      assert.match(e.message, /istio-system\/cacerts.*not created by meshca/);
      return true;
    });
    await assert.rejects(sink.delete(ref, owner), /not created by meshca/);
    await assert.rejects(sink.put({ namespace: 'istio-system', name: 'theirs' }, content('X'), owner), /managed by someone-else/);
    assert.equal(
      Buffer.from((double.store.get(secrets, 'cacerts')!.data as Record<string, string>)['ca-cert.pem'], 'base64').toString(),
      'HAND',
      'untouched',
    );
    // A user's own apply may replace it; so may a sink configured to override.
    const forced = new KubeSecretSink({ client, override: true });
    assert.equal(await forced.put(ref, content('FORCED'), owner), true);
    const now = double.store.get(secrets, 'cacerts')!;
    assert.equal(now.type, 'kubernetes.io/tls', 'the type changed: deleted and created again, as Kubernetes requires');
    assert.equal((now.metadata.annotations as Record<string, string>)[OWNER_ANNOTATION], owner.owner, "and it is now meshca's");
    assert.equal(await sink.put(ref, content('AGAIN'), owner), true, 'from then on the owner may replace it');
  });

  it('refuses refs to clusters it has no kubeconfig for', async () => {
    const sink = new KubeSecretSink({ client });
    await assert.rejects(
      sink.put({ cluster: 'east', namespace: 'istio-system', name: 'cacerts' }, content('X'), owner),
      /no kubeconfig for cluster "east"/,
    );
  });
});

describe('IstioPublisher', () => {
  const root = makeRoot({ now: new Date(Date.now() - 3_600_000) });
  const inter = makeIntermediate(root, { now: new Date(Date.now() - 3_600_000) });
  const material = () => ({ signer: { cert: inter.cert, key: inter.key, chain: [root.cert] }, roots: [root.cert] });

  it('publishes cacerts in both layouts, istiod-tls and the root ConfigMap, and leaves a hand-made cacerts alone', async () => {
    const ns = 'istio-pub';
    double.store.create({ resource: 'secrets', namespace: ns }, { metadata: { name: 'cacerts' }, type: 'Opaque', data: {} } as never);
    const pub = (override: boolean) =>
      new IstioPublisher({
        sink: new KubeSecretSink({ client, override }),
        client,
        namespace: ns,
        material,
        cacerts: true,
        istiod: { sans: ['istiod.istio-system.svc'], ttlSeconds: 86_400 },
      });
    await assert.rejects(pub(false).publish(), /not created by meshca/);
    const publisher = pub(true);
    const next = await publisher.publish();
    assert.ok(next > 1000 && next <= 43_200_000, 'renews istiod-tls at half life');
    const data = (name: string) =>
      Object.fromEntries(
        Object.entries((double.store.get({ resource: 'secrets', namespace: ns }, name)!.data as Record<string, string>) ?? {}).map(
          ([k, v]) => [k, Buffer.from(v, 'base64').toString()],
        ),
      );
    const cacerts = data('cacerts');
    assert.deepEqual(Object.keys(cacerts).sort(), [
      'ca-cert.pem',
      'ca-key.pem',
      'ca.crt',
      'cert-chain.pem',
      'root-cert.pem',
      'tls.crt',
      'tls.key',
    ]);
    assert.equal(cacerts['ca-cert.pem'], inter.cert.pem);
    assert.equal(cacerts['tls.crt'], inter.cert.pem, 'cert-manager layout: the CA and intermediates, no root');
    assert.equal(cacerts['ca.crt'], root.cert.pem);
    assert.equal(cacerts['cert-chain.pem'], inter.cert.pem + root.cert.pem);
    const tls = data('istiod-tls');
    const leaf = new X509Certificate(tls['tls.crt']);
    assert.match(leaf.subjectAltName ?? '', /DNS:istiod\.istio-system\.svc/);
    assert.ok(leaf.verify(inter.cert.publicKey));
    assert.equal(tls['ca.crt'], root.cert.pem);
    const cm = double.store.get({ resource: 'configmaps', namespace: ns }, 'istio-ca-root-cert')!;
    assert.equal((cm.data as Record<string, string>)['root-cert.pem'], root.cert.pem);
    const owner = (double.store.get({ resource: 'secrets', namespace: ns }, 'istiod-tls')!.metadata.annotations as Record<string, string>)[
      OWNER_ANNOTATION
    ];
    assert.equal(owner, PUBLISHER_OWNER);
    // A second pass writes nothing: same CA, istiod's certificate not at half life yet.
    const writes = () => double.requests.filter((r) => r.method !== 'GET' && r.path.includes(`/namespaces/${ns}/`)).length;
    const before = writes();
    await publisher.publish();
    assert.equal(writes(), before);
  });
});

describe('SecretStateBackend', () => {
  it('two replicas starting at once end up with the same root; a new cluster is added, never removed', async () => {
    const backend = () => new SecretStateBackend(client, { namespace: 'meshca-system', name: 'meshca-state' });
    const init = (dir: string) => {
      const s = new CaState(dir);
      s.initRoot({ alg: 'ec-p256', subject: { organization: ['cluster.local'] }, now: new Date() });
      s.createIntermediate('default', { alg: 'ec-p256', days: 30, now: new Date() });
    };
    const [a, c] = [join(tmp.path, 'a'), join(tmp.path, 'b')];
    const outcomes = await Promise.all([backend().prepare(a, init), backend().prepare(c, init)]);
    assert.deepEqual(outcomes.sort(), ['created', 'loaded']);
    const rootA = readFileSync(join(a, 'root', 'root-cert.pem'), 'utf8');
    assert.equal(readFileSync(join(c, 'root', 'root-cert.pem'), 'utf8'), rootA, 'one root for both');
    assert.equal(
      readFileSync(join(c, 'clusters', 'default', 'cacerts', 'ca-cert.pem'), 'utf8'),
      readFileSync(join(a, 'clusters', 'default', 'cacerts', 'ca-cert.pem'), 'utf8'),
    );
    assert.equal(statSync(join(c, 'root', 'root-key.pem')).mode & 0o777, 0o600, 'keys written 0600');
    const secret = double.store.get({ resource: 'secrets', namespace: 'meshca-system' }, 'meshca-state')!;
    assert.deepEqual(Object.keys(secret.data as object).sort(), [
      'cluster.default.ca-cert.pem',
      'cluster.default.ca-key.pem',
      'cluster.default.cert-chain.pem',
      'cluster.default.root-cert.pem',
      'root-cert.pem',
      'root-key.pem',
    ]);
    new CaState(a).createIntermediate('east', { alg: 'ec-p256', days: 30, now: new Date() });
    await backend().save(a);
    const keys = Object.keys(double.store.get({ resource: 'secrets', namespace: 'meshca-system' }, 'meshca-state')!.data as object);
    assert.ok(keys.includes('cluster.east.ca-key.pem') && keys.includes('cluster.default.ca-key.pem'));
    const d = join(tmp.path, 'd');
    assert.equal(await backend().prepare(d, () => assert.fail('must not init: the secret exists')), 'loaded');
    assert.ok(new CaState(d).hasCluster('east'));
    assert.equal(new CaState(d).loadRoot().cert.pem, rootA);
  });
});

describe('TokenReview against the API double', () => {
  it('accepts a service-account token for istio-ca and refuses the rest', async () => {
    double.tokens.set('good', { username: 'system:serviceaccount:shop:cart', audiences: ['istio-ca', 'other'] });
    double.tokens.set('api-only', {
      username: 'system:serviceaccount:shop:cart',
      audiences: ['https://kubernetes.default.svc.cluster.local'],
    });
    double.tokens.set('unaware', { username: 'system:serviceaccount:shop:cart', audiences: [], audienceUnaware: true });
    double.tokens.set('user', { username: 'alice', audiences: ['istio-ca'] });
    const v = await tokenReviewVerifier({ kubeconfig, trustDomain: 'cluster.local', audience: ['istio-ca'] });
    const r = await v.verify('good');
    assert.equal(r.caller, 'spiffe://cluster.local/ns/shop/sa/cart');
    assert.equal(r.method, 'token-review');
    const review = double.requests.filter((x) => x.path === '/apis/authentication.k8s.io/v1/tokenreviews');
    assert.ok(review.length > 0);
    const reason = async (token: string) => {
      try {
        await v.verify(token);
        return 'accepted';
      } catch (e) {
        return (e as { reason: string }).reason;
      }
    };
    assert.equal(await reason('api-only'), 'token_review_denied', 'wrong audience: the API server says no');
    assert.equal(await reason('unaware'), 'bad_audience', 'no status.audiences: valid for the API server only');
    assert.equal(await reason('user'), 'no_service_account');
    assert.equal(await reason('forged'), 'token_review_denied');
  });
});
