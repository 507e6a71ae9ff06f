import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { parseCertificates } from '../../pki/certificate.js';
import { verifyChain } from '../../pki/chain.js';
import { loadManifests } from '../../resources/load.js';
import type { AwsPcaIssuer, Certificate } from '../../resources/certmanager.js';
import { getCondition } from '../../resources/meta.js';
import { readFileSync } from 'node:fs';
import { expandShellVars, SEED_VARS } from '../../../test/fixtures/manifests/expand.js';
import { fakePca, harness, type Harness } from '../testing/harness.js';

const T0 = new Date('2030-01-01T00:00:00Z');
const harnesses: Harness[] = [];
after(() => harnesses.forEach((h) => h.cleanup()));
const seed = expandShellVars(
  readFileSync(new URL('../../../../test/fixtures/manifests/istio-ca-awspca.yaml', import.meta.url), 'utf8'),
  SEED_VARS,
);

async function applySeed(h: Harness): Promise<void> {
  for (const d of loadManifests(seed, 'seed')) await h.store.apply(d.object.kind, d.object.resource!, T0);
}

describe('AWSPCAIssuer', () => {
  it('is Ready ("Issuer verified") and issues the seed cacerts Certificate through the PCA upstream', async () => {
    const pca = fakePca(() => T0);
    const h = harness(() => T0, pca.factory);
    harnesses.push(h);
    await applySeed(h);
    await h.reconcile(T0);
    const issuer = await h.get<AwsPcaIssuer>('AWSPCAIssuer', 'aws-pca-issuer-istio', 'istio-system');
    const ready = getCondition(issuer.status?.conditions, 'Ready');
    assert.equal(ready?.status, 'True');
    assert.equal(ready?.reason, 'Verified');
    assert.equal(ready?.message, 'Issuer verified');
    const cert = await h.get<Certificate>('Certificate', 'istio-ca', 'istio-system');
    assert.equal(getCondition(cert.status?.conditions, 'Ready')?.status, 'True');
    assert.equal(cert.status?.renewalTime, '2030-01-16T00:00:00Z');
    const s = (await h.secrets.get({ namespace: 'istio-system', name: 'cacerts' }))!;
    const chain = parseCertificates(s.data['tls.crt'].toString());
    const roots = parseCertificates(s.data['ca.crt'].toString());
    assert.equal(roots[0].fingerprint256, pca.root.fingerprint256);
    assert.ok(chain[0].isCA);
    assert.match(chain[0].subject, /O = cluster.local, O = cert-manager, CN = istio-ca/);
    assert.deepEqual(chain[0].ext.san?.dnsNames, ['*.istiod-1-20']);
    assert.ok(verifyChain(chain, { now: T0, roots }).ok);
    assert.equal(pca.calls.sign, 1);
  });

  it('is not Ready when the CA cannot be described, and requests wait', async () => {
    const pca = fakePca(() => T0, { failCheck: 'AWS Private CA arn:... is DISABLED, not ACTIVE' });
    const h = harness(() => T0, pca.factory);
    harnesses.push(h);
    await applySeed(h);
    await h.reconcile(T0);
    const issuer = await h.get<AwsPcaIssuer>('AWSPCAIssuer', 'aws-pca-issuer-istio', 'istio-system');
    assert.equal(getCondition(issuer.status?.conditions, 'Ready')?.status, 'False');
    assert.match(getCondition(issuer.status?.conditions, 'Ready')!.message, /DISABLED/);
    assert.equal(pca.calls.sign, 0);
  });

  it('takes credentials from secretRef and says which key is missing', async () => {
    const seen: unknown[] = [];
    const pca = fakePca(() => T0);
    const h = harness(
      () => T0,
      async (spec, creds, now) => {
        seen.push(creds);
        return pca.factory(spec, creds, now);
      },
    );
    harnesses.push(h);
    await h.secrets.put({ namespace: 'istio-system', name: 'aws' }, { data: { AWS_ACCESS_KEY_ID: Buffer.from('AKIA1') } }, { user: true });
    const [issuer] = loadManifests(seed, 'seed');
    const input = structuredClone(issuer.object.resource!) as { spec: Record<string, unknown> } & typeof issuer.object.resource;
    input!.spec.secretRef = { name: 'aws', namespace: 'istio-system' };
    await h.store.apply(issuer.object.kind, input!, T0);
    await h.reconcile(T0);
    let o = await h.get<AwsPcaIssuer>('AWSPCAIssuer', 'aws-pca-issuer-istio', 'istio-system');
    assert.equal(getCondition(o.status?.conditions, 'Ready')?.message, 'secret value AWS_SECRET_ACCESS_KEY was not found');
    await h.secrets.put(
      { namespace: 'istio-system', name: 'aws' },
      { data: { AWS_ACCESS_KEY_ID: Buffer.from('AKIA1'), AWS_SECRET_ACCESS_KEY: Buffer.from('s3cr3t') } },
      { user: true },
    );
    await h.reconcile(T0);
    o = await h.get<AwsPcaIssuer>('AWSPCAIssuer', 'aws-pca-issuer-istio', 'istio-system');
    assert.equal(getCondition(o.status?.conditions, 'Ready')?.status, 'True');
    assert.deepEqual(seen.at(-1), { accessKeyId: 'AKIA1', secretAccessKey: 's3cr3t' });
  });
});
