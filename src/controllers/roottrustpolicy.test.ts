import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { parseCertificate, parseCertificates } from '../pki/certificate.js';
import { verifyChain } from '../pki/chain.js';
import { generateKeyPair } from '../pki/keys.js';
import { createIntermediateCertificate, createRootCertificate } from '../pki/profiles.js';
import type { RootTrustPolicy } from '../resources/gloo.js';
import { getCondition } from '../resources/meta.js';
import { CLUSTER } from '../resources/kinds.js';
import { OWNER_ANNOTATION } from '../resources/secrets.js';
import { cacertsRef } from './roottrustpolicy.js';
import { gen, withSpec } from './testing/gen.js';
import { harness, type Harness } from './testing/harness.js';

const DAY = 86_400_000;
const T0 = new Date('2030-01-01T00:00:00Z');
const harnesses: Harness[] = [];
after(() => harnesses.forEach((h) => h.cleanup()));

async function bundle(h: Harness, cluster: string) {
  const s = (await h.secrets.get(cacertsRef(cluster)))!;
  return {
    secret: s,
    ca: parseCertificate(s.data['ca-cert.pem'].toString()),
    chain: parseCertificates(s.data['cert-chain.pem'].toString()),
    roots: parseCertificates(s.data['root-cert.pem'].toString()),
  };
}

describe('RootTrustPolicy controller', () => {
  it('issues one intermediate per registered cluster under the generated meshca root, all sharing it', async () => {
    const h = harness(() => T0);
    harnesses.push(h);
    await h.apply(
      gen.cluster('east'),
      gen.cluster('west'),
      gen.rootTrustPolicy(
        'rtp',
        withSpec({
          config: {
            mgmtServerCa: { generated: { rsaKeySizeBytes: 2048 } },
            intermediateCertOptions: { rsaKeySizeBytes: 2048, ttlDays: 10 },
          },
        }),
      ),
    );
    await h.reconcile(T0);
    const root = h.state.loadRoot().cert;
    assert.match(root.subject, /O = gloo-mesh/);
    for (const c of ['east', 'west']) {
      const b = await bundle(h, c);
      assert.equal(b.secret.annotations?.[OWNER_ANNOTATION], 'RootTrustPolicy/gloo-mesh/rtp');
      assert.equal(b.roots[0].fingerprint256, root.fingerprint256);
      assert.equal(b.ca.keyInfo.label, 'RSA 2048');
      assert.match(b.ca.subject, /O = gloo-mesh, CN = meshca intermediate/);
      assert.equal(b.ca.notAfter.getTime(), T0.getTime() + 10 * DAY);
      assert.ok(verifyChain(b.chain, { now: T0, roots: b.roots }).ok);
      // meshca's own CaState reads what the policy wrote.
      assert.equal(h.state.loadCluster(c).caCert.fingerprint256, b.ca.fingerprint256);
    }
    const rtp = await h.get<RootTrustPolicy>('RootTrustPolicy', 'rtp', 'gloo-mesh');
    assert.equal(rtp.status?.state, 'ACCEPTED');
    assert.equal(getCondition(rtp.status?.conditions, 'Ready')?.status, 'True');
    assert.deepEqual(Object.keys(rtp.status?.clusters ?? {}).sort(), ['east', 'west']);
    // 10 days (plus the 60 s back-dating) with ratio 0.1, the default: renew about a day before expiry.
    assert.equal(rtp.status?.clusters?.east.renewalTime, '2030-01-09T23:59:54Z');
  });

  it('renews when the grace-period ratio of the lifetime is left, not before; removes unregistered clusters', async () => {
    const h = harness(() => T0);
    harnesses.push(h);
    await h.apply(
      gen.cluster('east'),
      gen.rootTrustPolicy(
        'rtp',
        withSpec({
          config: {
            mgmtServerCa: { generated: { rsaKeySizeBytes: 2048 } },
            intermediateCertOptions: { rsaKeySizeBytes: 2048, ttlDays: 1, secretRotationGracePeriodRatio: 0.5 },
          },
        }),
      ),
    );
    await h.reconcile(T0);
    const first = await bundle(h, 'east');
    const at = Date.parse((await h.get<RootTrustPolicy>('RootTrustPolicy', 'rtp', 'gloo-mesh')).status!.clusters!.east.renewalTime!);
    assert.equal(
      at,
      first.ca.notAfter.getTime() - Math.floor((first.ca.notAfter.getTime() - first.ca.notBefore.getTime()) / 2 / 1000) * 1000,
    );
    const quiet = await h.reconcile(new Date(at - 1000));
    assert.deepEqual(quiet.events, []);
    const r = await h.reconcile(new Date(at));
    assert.ok(
      r.events.some((e) => e.action === 'renewed' && /cluster east: renewal was scheduled/.test(e.message)),
      JSON.stringify(r.events),
    );
    const second = await bundle(h, 'east');
    assert.notEqual(second.ca.serialHex, first.ca.serialHex);
    await h.store.delete(CLUSTER, 'east');
    await h.reconcile(new Date(T0.getTime() + DAY / 2 + 1000));
    assert.equal(await h.secrets.get(cacertsRef('east')), undefined);
    const rtp = await h.get<RootTrustPolicy>('RootTrustPolicy', 'rtp', 'gloo-mesh');
    assert.equal(getCondition(rtp.status?.conditions, 'Ready')?.reason, 'NoClusters');
  });

  it('signs with the CA in secretRef (an intermediate: Gloo option 3) and keeps the full chain', async () => {
    const h = harness(() => T0);
    harnesses.push(h);
    const rk = generateKeyPair('ec-p256');
    const root = createRootCertificate({
      key: rk.privateKey,
      subject: { organization: ['Istio'], commonName: 'Root CA' },
      now: new Date(T0.getTime() - DAY),
    });
    const ik = generateKeyPair('ec-p256');
    const inter = createIntermediateCertificate({
      issuerCert: root,
      issuerKey: rk.privateKey,
      publicKey: ik.publicKey,
      subject: { commonName: 'mgmt intermediate' },
      days: 365,
      pathLen: 1,
      now: new Date(T0.getTime() - DAY),
    }).cert;
    await h.secrets.put(
      { namespace: 'gloo-mesh', name: 'my-root-trust-policy.gloo-mesh' },
      {
        data: {
          'ca-cert.pem': Buffer.from(inter.pem),
          'ca-key.pem': Buffer.from(ik.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string),
          'cert-chain.pem': Buffer.from(inter.pem + root.pem),
          'root-cert.pem': Buffer.from(root.pem),
        },
      },
      { user: true },
    );
    await h.apply(
      gen.cluster('east'),
      gen.rootTrustPolicy(
        'rtp',
        withSpec({
          config: {
            mgmtServerCa: { secretRef: { name: 'my-root-trust-policy.gloo-mesh', namespace: 'gloo-mesh' } },
            intermediateCertOptions: { rsaKeySizeBytes: 2048 },
          },
        }),
      ),
    );
    await h.reconcile(T0);
    const b = await bundle(h, 'east');
    assert.deepEqual(
      b.chain.map((c) => c.subject),
      [b.ca.subject, inter.subject, root.subject],
    );
    assert.equal(b.roots[0].fingerprint256, root.fingerprint256);
    assert.ok(verifyChain(b.chain, { now: T0, roots: b.roots }).ok);
    assert.equal(b.ca.notAfter.getTime(), inter.notAfter.getTime(), 'ttlDays default 365, cut back to the intermediate above');
    assert.equal(h.state.hasRoot(), false, 'secretRef mode never creates a meshca root');
  });

  it('refuses to replace a cacerts bundle it does not own, and says so per cluster', async () => {
    const h = harness(() => T0);
    harnesses.push(h);
    await h.secrets.put(cacertsRef('east'), { data: { 'ca-cert.pem': Buffer.from('x') } }, { user: true });
    await h.apply(
      gen.cluster('east'),
      gen.rootTrustPolicy(
        'rtp',
        withSpec({
          config: { mgmtServerCa: { generated: { rsaKeySizeBytes: 2048 } }, intermediateCertOptions: { rsaKeySizeBytes: 2048 } },
        }),
      ),
    );
    await h.reconcile(T0);
    const rtp = await h.get<RootTrustPolicy>('RootTrustPolicy', 'rtp', 'gloo-mesh');
    assert.equal(rtp.status?.state, 'FAILED');
    assert.match(rtp.status?.clusters?.east.message ?? '', /not managed by meshca; refusing to replace it/);
    assert.equal((await h.secrets.get(cacertsRef('east')))?.data['ca-cert.pem'].toString(), 'x');
  });
});
