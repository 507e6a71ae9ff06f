import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { parseCertificate, parseCertificates, type ParsedCertificate } from '../pki/certificate.js';
import { verifyChain } from '../pki/chain.js';
import { createCsr } from '../pki/csr.js';
import { issueWorkloadCertificate } from '../pki/issue.js';
import { generateKeyPair } from '../pki/keys.js';
import { ROOT_ROTATION } from '../resources/kinds.js';
import type { RootRotation } from '../resources/meshca.js';
import type { Resource } from '../resources/meta.js';
import type { ResourceStore } from '../resources/store.js';
import { reconcileAll } from './reconcile.js';
import { cacertsRef } from './roottrustpolicy.js';
import { gen, withSpec } from './testing/gen.js';
import { harness, type Harness } from './testing/harness.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const T0 = new Date('2030-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const harnesses: Harness[] = [];
after(() => harnesses.forEach((h) => h.cleanup()));

const rotation = (spec: Record<string, unknown> = {}) => ({
  apiVersion: 'meshca.io/v1alpha1',
  kind: 'RootRotation',
  metadata: { name: 'rotate-2030' },
  spec: { rootTrustPolicyRef: { name: 'rtp' }, workloadRenewalWindow: '1h', newRoot: { generated: { rsaKeySizeBytes: 2048 } }, ...spec },
});

async function setup(): Promise<Harness> {
  const h = harness(() => T0);
  harnesses.push(h);
  await h.apply(
    gen.cluster('east'),
    gen.cluster('west'),
    gen.rootTrustPolicy(
      'rtp',
      withSpec({
        config: { mgmtServerCa: { generated: { rsaKeySizeBytes: 2048 } }, intermediateCertOptions: { rsaKeySizeBytes: 2048, ttlDays: 30 } },
      }),
    ),
  );
  await h.reconcile(T0);
  return h;
}

async function bundle(h: Harness, c: string) {
  const s = (await h.secrets.get(cacertsRef(c)))!;
  return {
    ca: parseCertificate(s.data['ca-cert.pem'].toString()),
    chain: parseCertificates(s.data['cert-chain.pem'].toString()),
    roots: parseCertificates(s.data['root-cert.pem'].toString()),
  };
}

async function phase(h: Harness): Promise<RootRotation['status']> {
  return (await h.get<RootRotation>('RootRotation', 'rotate-2030')).status;
}

/** A workload certificate from a cluster's current intermediate, as meshca serve would issue it. */
async function workload(h: Harness, c: string, now: Date): Promise<ParsedCertificate[]> {
  const signer = h.state.signer(c);
  const csr = createCsr({ key: generateKeyPair('ec-p256').privateKey, sans: { uris: ['spiffe://cluster.local/ns/default/sa/web'] } });
  const issued = issueWorkloadCertificate(signer, {
    csr: csr.pem,
    identities: ['spiffe://cluster.local/ns/default/sa/web'],
    ttlSeconds: 86_400,
    now,
  });
  return issued.chain.map((p) => parseCertificate(p));
}

/** Every cluster's trust bundle accepts every workload chain, old or new: no connection can fail. */
async function assertMutualTrust(h: Harness, chains: ParsedCertificate[][], now: Date): Promise<void> {
  for (const c of ['east', 'west']) {
    const { roots } = await bundle(h, c);
    for (const chain of chains) {
      const v = verifyChain(
        chain.filter((x) => !x.selfIssued),
        { now, roots, leafIsEndEntity: true },
      );
      assert.ok(v.ok, `${c} rejects ${chain[0].subject || chain[0].ext.san?.uris[0]} via ${chain[1].subject}: ${v.problems.join('; ')}`);
    }
  }
}

describe('RootRotation', () => {
  it('rotates through every phase with both roots trusted while any chain uses the old one', async () => {
    const h = await setup();
    const oldRoot = h.state.loadRoot().cert;
    const oldWorkload = await workload(h, 'east', at(MIN));
    await h.apply(rotation());
    const r1 = await h.reconcile(at(MIN));
    assert.ok(
      r1.events.some((e) => e.action === 'advanced' && /^NewRootCreated/.test(e.message)),
      JSON.stringify(r1.events),
    );
    let s = await phase(h);
    assert.equal(s?.phase, 'TrustBundleExpanded');
    assert.equal(s?.oldRootFingerprint, oldRoot.fingerprint256);
    for (const c of ['east', 'west']) {
      const b = await bundle(h, c);
      assert.deepEqual(b.roots.map((r) => r.fingerprint256).sort(), [oldRoot.fingerprint256, s!.newRootFingerprint!].sort());
      assert.equal(b.chain.at(-1)?.fingerprint256, oldRoot.fingerprint256, 'still signed by the old root');
    }
    await assertMutualTrust(h, [oldWorkload], at(MIN));

    // Not before the workload window has passed.
    await h.reconcile(at(MIN + 59 * MIN));
    assert.equal((await phase(h))?.phase, 'TrustBundleExpanded');
    await h.reconcile(at(MIN + HOUR));
    s = await phase(h);
    assert.equal(s?.phase, 'IntermediatesReissued');
    const newWorkload = await workload(h, 'west', at(MIN + HOUR));
    for (const c of ['east', 'west']) {
      const b = await bundle(h, c);
      assert.equal(b.chain.at(-1)?.fingerprint256, s!.newRootFingerprint, `${c} now chains to the new root`);
    }
    await assertMutualTrust(h, [oldWorkload, newWorkload], at(MIN + HOUR));

    await h.reconcile(at(MIN + 2 * HOUR - 1000));
    assert.equal((await phase(h))?.phase, 'IntermediatesReissued');
    const r3 = await h.reconcile(at(MIN + 2 * HOUR));
    s = await phase(h);
    assert.equal(s?.phase, 'Complete', JSON.stringify(r3.events));
    assert.deepEqual(
      s?.history?.map((x) => x.phase),
      ['NewRootCreated', 'TrustBundleExpanded', 'IntermediatesReissued', 'WorkloadsRenewed', 'OldRootWithdrawn', 'Complete'],
    );
    for (const c of ['east', 'west'])
      assert.deepEqual(
        (await bundle(h, c)).roots.map((r) => r.fingerprint256),
        [s!.newRootFingerprint],
      );
    assert.equal(h.state.loadRoot().cert.fingerprint256, s!.newRootFingerprint, 'the new root is now the meshca root');
    const old = await h.secrets.get({ namespace: 'gloo-mesh', name: 'rotate-2030-old-root' });
    assert.equal(parseCertificate(old!.data['ca-cert.pem'].toString()).fingerprint256, oldRoot.fingerprint256);
    // Settled: nothing more to do, nothing re-issued.
    const quiet = await h.reconcile(at(MIN + 2 * HOUR + MIN));
    assert.deepEqual(quiet.events, []);
  });

  it('stops where pauseAfter says and resumes when it is lifted', async () => {
    const h = await setup();
    const before = await bundle(h, 'east');
    await h.apply(rotation({ pauseAfter: 'NewRootCreated' }));
    await h.reconcile(at(MIN));
    const s = await phase(h);
    assert.equal(s?.phase, 'NewRootCreated');
    assert.match(s?.message ?? '', /paused after NewRootCreated/);
    assert.deepEqual(
      (await bundle(h, 'east')).roots.map((r) => r.fingerprint256),
      before.roots.map((r) => r.fingerprint256),
      'nothing widened yet',
    );
    await h.apply(rotation());
    await h.reconcile(at(2 * MIN));
    assert.equal((await phase(h))?.phase, 'TrustBundleExpanded');
  });

  it('resumes after a crash between creating the new root and recording it, reusing that root', async () => {
    const h = await setup();
    await h.apply(rotation());
    // The process "dies" as it records NewRootCreated: the status write fails once.
    let failed = false;
    const crashing: ResourceStore = Object.create(h.store);
    crashing.updateStatus = async <T extends Resource>(kind: Parameters<ResourceStore['updateStatus']>[0], o: T): Promise<T> => {
      if (kind === ROOT_ROTATION && !failed) {
        failed = true;
        throw new Error('killed');
      }
      return h.store.updateStatus(kind, o);
    };
    const crashed = await reconcileAll({ ...h, store: crashing }, { now: at(MIN), maxPasses: 1 });
    assert.ok(
      crashed.events.some((e) => e.action === 'error' && e.message === 'killed'),
      JSON.stringify(crashed.events),
    );
    assert.equal((await phase(h))?.phase, undefined);
    const written = await h.secrets.get({ namespace: 'gloo-mesh', name: 'rotate-2030-new-root' });
    const fp = parseCertificate(written!.data['ca-cert.pem'].toString()).fingerprint256;
    await h.reconcile(at(2 * MIN));
    const s = await phase(h);
    assert.equal(s?.phase, 'TrustBundleExpanded');
    assert.equal(s?.newRootFingerprint, fp);
  });

  it('dry run reports the next step and writes nothing', async () => {
    const h = await setup();
    await h.apply(rotation());
    const r = await h.reconcile(at(MIN), true);
    assert.ok(
      r.events.some((e) => e.action === 'would-advance'),
      JSON.stringify(r.events),
    );
    assert.equal(await phase(h), undefined);
    assert.equal(await h.secrets.get({ namespace: 'gloo-mesh', name: 'rotate-2030-new-root' }), undefined);
  });
});
