import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { parseCertificates } from '../../pki/certificate.js';
import { verifyChain } from '../../pki/chain.js';
import type { Certificate, Issuer } from '../../resources/certmanager.js';
import { getCondition } from '../../resources/meta.js';
import { gen, withDNSNames, withIsCA, withIssuer, withPrivateKey } from '../testing/gen.js';
import { harness, type Harness } from '../testing/harness.js';

const T0 = new Date('2030-01-01T00:00:00Z');
const harnesses: Harness[] = [];
after(() => harnesses.forEach((h) => h.cleanup()));

describe('meshca issuer', () => {
  it('signs with the state root, or with a cluster intermediate, and is not Ready without them', async () => {
    const h = harness(() => T0);
    harnesses.push(h);
    await h.apply(gen.meshcaClusterIssuer('meshca'), gen.meshcaClusterIssuer('east', 'east'));
    await h.reconcile(T0);
    assert.match(
      getCondition((await h.get<Issuer>('ClusterIssuer', 'meshca')).status?.conditions, 'Ready')!.message,
      /no root in .*meshca init/,
    );
    h.state.initRoot({ alg: 'ec-p256', now: new Date(T0.getTime() - 60_000) });
    h.state.createIntermediate('east', { alg: 'ec-p256', days: 365, now: new Date(T0.getTime() - 60_000) });
    await h.apply(
      gen.certificate('istio-ca', withIsCA(), withIssuer('meshca', 'ClusterIssuer'), withPrivateKey({ algorithm: 'ECDSA' })),
      gen.certificate('web', withDNSNames('web.example'), withIssuer('east', 'ClusterIssuer'), withPrivateKey({ algorithm: 'ECDSA' })),
    );
    await h.reconcile(T0);
    const root = h.state.loadRoot().cert;
    for (const name of ['istio-ca', 'web']) {
      const c = await h.get<Certificate>('Certificate', name);
      assert.equal(getCondition(c.status?.conditions, 'Ready')?.status, 'True', name);
      const s = (await h.secrets.get({ namespace: 'default', name }))!;
      const chain = parseCertificates(s.data['tls.crt'].toString());
      assert.equal(parseCertificates(s.data['ca.crt'].toString())[0].fingerprint256, root.fingerprint256);
      assert.ok(verifyChain(chain, { now: T0, roots: [root] }).ok, name);
    }
    const web = parseCertificates((await h.secrets.get({ namespace: 'default', name: 'web' }))!.data['tls.crt'].toString());
    assert.equal(web.length, 2, 'leaf and the east intermediate');
    assert.match(web[1].subject, /meshca intermediate east/);
  });
});
