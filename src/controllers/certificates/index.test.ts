import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { parseCertificates } from '../../pki/certificate.js';
import { verifyChain } from '../../pki/chain.js';
import type { Certificate, CertificateRequest } from '../../resources/certmanager.js';
import { CERTIFICATE_REQUEST } from '../../resources/kinds.js';
import { getCondition } from '../../resources/meta.js';
import { OWNER_ANNOTATION } from '../../resources/secrets.js';
import { manualClock } from '../clock.js';
import {
  gen,
  withDNSNames,
  withDuration,
  withIsCA,
  withIssuer,
  withNamespace,
  withPrivateKey,
  withRenewBefore,
  withSecretName,
} from '../testing/gen.js';
import { harness, type Harness } from '../testing/harness.js';

const HOUR = 3_600_000;
const T0 = new Date('2030-01-01T00:00:00Z');
const harnesses: Harness[] = [];
after(() => harnesses.forEach((h) => h.cleanup()));

function setup(): { h: Harness; clock: ReturnType<typeof manualClock> } {
  const clock = manualClock(T0);
  const h = harness(clock);
  harnesses.push(h);
  return { h, clock };
}

async function secretOf(h: Harness, name: string, ns = 'default') {
  const s = await h.secrets.get({ namespace: ns, name });
  assert.ok(s, `secret ${ns}/${name} exists`);
  return { secret: s, chain: parseCertificates(s.data['tls.crt'].toString()), ca: parseCertificates(s.data['ca.crt'].toString()) };
}

describe('certificates controller', () => {
  it('issues from a selfSigned issuer: secret, CertificateRequest with approval, Ready, times', async () => {
    const { h } = setup();
    await h.apply(gen.selfSignedIssuer(), gen.certificate('web', withDNSNames('web.example'), withDuration('24h')));
    const report = await h.reconcile(T0);
    assert.ok(
      report.events.some((e) => e.object === 'Certificate default/web' && e.action === 'issued'),
      JSON.stringify(report.events),
    );
    const cert = await h.get<Certificate>('Certificate', 'web');
    assert.equal(getCondition(cert.status?.conditions, 'Ready')?.status, 'True');
    assert.equal(getCondition(cert.status?.conditions, 'Ready')?.message, 'Certificate is up to date and has not expired');
    assert.equal(getCondition(cert.status?.conditions, 'Issuing'), undefined);
    assert.equal(cert.status?.revision, 1);
    assert.equal(cert.status?.notAfter, '2030-01-02T00:00:00Z');
    assert.equal(cert.status?.renewalTime, '2030-01-01T16:00:00Z'); // a third of 24h before expiry
    const { secret, chain, ca } = await secretOf(h, 'web');
    assert.equal(secret.type, 'kubernetes.io/tls');
    assert.equal(secret.annotations?.['cert-manager.io/certificate-name'], 'web');
    assert.equal(secret.annotations?.[OWNER_ANNOTATION], 'Certificate/default/web');
    assert.match(secret.data['tls.key'].toString(), /BEGIN RSA PRIVATE KEY/);
    assert.deepEqual(chain[0].ext.san?.dnsNames, ['web.example']);
    assert.equal(ca[0].fingerprint256, chain[0].fingerprint256);
    const cr = await h.get<CertificateRequest>('CertificateRequest', 'web-1');
    assert.equal(cr.metadata.annotations?.['cert-manager.io/certificate-revision'], '1');
    assert.equal(getCondition(cr.status?.conditions, 'Approved')?.status, 'True');
    assert.equal(getCondition(cr.status?.conditions, 'Ready')?.reason, 'Issued');
    assert.equal(cr.metadata.ownerReferences?.[0].kind, 'Certificate');
    // The temporary next-key secret is gone once issued.
    assert.equal(await h.secrets.get({ namespace: 'default', name: 'web-next-private-key' }), undefined);
  });

  it('renews exactly at renewalTime under an advanced clock, with a new serial and revision', async () => {
    const { h } = setup();
    await h.apply(gen.selfSignedIssuer(), gen.certificate('web', withDuration('720h'), withRenewBefore('360h')));
    await h.reconcile(T0);
    const first = await h.get<Certificate>('Certificate', 'web');
    assert.equal(first.status?.renewalTime, '2030-01-16T00:00:00Z');
    const before = new Date(Date.parse(first.status!.renewalTime!) - 1000);
    const quiet = await h.reconcile(before);
    assert.deepEqual(quiet.events, []);
    assert.equal(quiet.nextWakeup?.toISOString(), '2030-01-16T00:00:00.000Z');
    assert.equal((await h.get<Certificate>('Certificate', 'web')).status?.revision, 1);
    const at = new Date(first.status!.renewalTime!);
    const r = await h.reconcile(at);
    assert.ok(
      r.events.some((e) => e.action === 'renewed'),
      JSON.stringify(r.events),
    );
    const second = await h.get<Certificate>('Certificate', 'web');
    assert.equal(second.status?.revision, 2);
    assert.notEqual(second.status?.serialNumber, first.status?.serialNumber);
    assert.equal(second.status?.notAfter, '2030-02-15T00:00:00Z');
    // revisionHistoryLimit 1: only the latest request is kept.
    assert.deepEqual(
      (await h.store.list(CERTIFICATE_REQUEST)).map((o) => o.metadata.name),
      ['web-2'],
    );
  });

  it('chains a ca issuer to a selfSigned root in one reconcile, and the chain verifies', async () => {
    const { h } = setup();
    await h.apply(
      gen.selfSignedIssuer(),
      gen.certificate('root', withIsCA(), withDuration('87600h'), withPrivateKey({ algorithm: 'ECDSA', size: 256 })),
      gen.caIssuer('root-ca', 'root'),
      gen.certificate('istio-ca', withIsCA(), withSecretName('cacerts'), withIssuer('root-ca'), withDuration('720h')),
    );
    await h.reconcile(T0);
    const { chain, ca } = await secretOf(h, 'cacerts');
    assert.equal(chain.length, 1, 'tls.crt holds the CA certificate; the self-signed root goes to ca.crt');
    assert.ok(chain[0].isCA);
    assert.match(ca[0].subject, /CN = root/);
    const v = verifyChain(chain, { now: T0, roots: ca });
    assert.ok(v.ok, v.problems.join('; '));
    assert.equal(getCondition((await h.get<Certificate>('Certificate', 'istio-ca')).status?.conditions, 'Ready')?.status, 'True');
  });

  it('waits, Pending, while the issuer is not Ready, and says why', async () => {
    const { h } = setup();
    await h.apply(gen.caIssuer('missing-ca', 'nope'), gen.certificate('web', withIssuer('missing-ca')));
    await h.reconcile(T0);
    const cert = await h.get<Certificate>('Certificate', 'web');
    // The issuer is not Ready: the request waits (Pending), the certificate is Issuing.
    assert.equal(getCondition(cert.status?.conditions, 'Issuing')?.status, 'True');
    const cr = await h.get<CertificateRequest>('CertificateRequest', 'web-1');
    assert.equal(getCondition(cr.status?.conditions, 'Ready')?.reason, 'Pending');
    assert.match(getCondition(cr.status?.conditions, 'Ready')!.message, /does not have a Ready status condition/);
    const issuer = await h.get<{ status?: { conditions?: [] } } & Certificate>('Issuer', 'missing-ca');
    assert.match(
      getCondition(issuer.status?.conditions, 'Ready')!.message,
      /error getting keypair for CA issuer: secret "default\/nope" not found/,
    );
  });

  it('backs off after a signing failure: 1h, then 2h; a spec change retries at once', async () => {
    const { h } = setup();
    // A CA issuer whose CA expires before the certificate could start fails at signing time.
    await h.apply(
      gen.selfSignedIssuer(),
      gen.certificate('old-root', withIsCA(), withDuration('2h'), withPrivateKey({ algorithm: 'ECDSA' })),
      gen.caIssuer('old', 'old-root'),
    );
    await h.reconcile(T0);
    await h.apply(gen.certificate('web', withIssuer('old'), withDuration('24h'), withSpec({ usages: ['server auth'] })));
    // Move past the CA's expiry: signing now fails.
    const t1 = new Date(T0.getTime() + 3 * HOUR);
    await h.store.delete((await import('../../resources/kinds.js')).CERTIFICATE, 'old-root', 'default');
    const r1 = await h.reconcile(t1);
    assert.ok(
      r1.events.some((e) => e.object === 'Certificate default/web' && e.action === 'failed'),
      JSON.stringify(r1.events),
    );
    let cert = await h.get<Certificate>('Certificate', 'web');
    const issuing = getCondition(cert.status?.conditions, 'Issuing')!;
    assert.equal(issuing.status, 'False');
    assert.equal(issuing.reason, 'Failed');
    assert.match(issuing.message, /will be retried: Failed to sign certificate: issuer "old-root" expired/);
    assert.equal(cert.status?.failedIssuanceAttempts, 1);
    assert.equal(r1.nextWakeup?.getTime(), t1.getTime() + HOUR);
    const r2 = await h.reconcile(new Date(t1.getTime() + HOUR - 1000));
    assert.ok(
      r2.events.some((e) => e.action === 'backoff'),
      JSON.stringify(r2.events),
    );
    await h.reconcile(new Date(t1.getTime() + HOUR));
    cert = await h.get<Certificate>('Certificate', 'web');
    assert.equal(cert.status?.failedIssuanceAttempts, 2);
    assert.equal(cert.status?.lastFailureTime, new Date(t1.getTime() + HOUR).toISOString().replace('.000Z', 'Z'));
    // Second backoff is 2h; but changing the spec retries immediately (and still fails here).
    await h.apply(gen.certificate('web', withIssuer('old'), withDuration('48h'), withSpec({ usages: ['server auth'] })));
    await h.reconcile(new Date(t1.getTime() + HOUR + 60_000));
    assert.equal((await h.get<Certificate>('Certificate', 'web')).status?.failedIssuanceAttempts, 3);
  });

  it('denies requests matching an ApprovalPolicy rule', async () => {
    const { h } = setup();
    await h.apply(gen.selfSignedIssuer(), gen.approvalPolicy('no-wildcards', [{ dnsNames: ['*.evil.example'], message: 'no evil names' }]));
    await h.apply(gen.certificate('bad', withDNSNames('a.evil.example')), gen.certificate('good', withDNSNames('a.good.example')));
    await h.reconcile(T0);
    const cr = await h.get<CertificateRequest>('CertificateRequest', 'bad-1');
    assert.equal(getCondition(cr.status?.conditions, 'Denied')?.status, 'True');
    assert.equal(getCondition(cr.status?.conditions, 'Denied')?.message, 'Denied by ApprovalPolicy no-wildcards rule 1: no evil names');
    assert.equal(getCondition(cr.status?.conditions, 'Ready')?.reason, 'Denied');
    const bad = await h.get<Certificate>('Certificate', 'bad');
    assert.match(getCondition(bad.status?.conditions, 'Issuing')!.message, /denied by an approval controller/);
    assert.equal(getCondition((await h.get<Certificate>('Certificate', 'good')).status?.conditions, 'Ready')?.status, 'True');
  });

  it('never replaces a secret it does not own', async () => {
    const { h } = setup();
    await h.secrets.put({ namespace: 'default', name: 'web' }, { data: { 'tls.crt': Buffer.from('mine') } }, { user: true });
    await h.apply(gen.selfSignedIssuer(), gen.certificate('web'));
    const r = await h.reconcile(T0);
    assert.ok(r.events.some((e) => e.action === 'blocked'));
    const cert = await h.get<Certificate>('Certificate', 'web');
    assert.equal(getCondition(cert.status?.conditions, 'Ready')?.reason, 'SecretNotOwned');
    assert.equal((await h.secrets.get({ namespace: 'default', name: 'web' }))?.data['tls.crt'].toString(), 'mine');
  });

  it('a failure inside issuance (a key secret it does not own) is a failed attempt, and other certificates still issue', async () => {
    const { h } = setup();
    await h.secrets.put({ namespace: 'default', name: 'web-next-private-key' }, { data: { 'tls.key': Buffer.from('x') } }, { user: true });
    await h.apply(gen.selfSignedIssuer(), gen.certificate('web'), gen.certificate('api'));
    const r = await h.reconcile(T0);
    const web = await h.get<Certificate>('Certificate', 'web');
    assert.match(getCondition(web.status?.conditions, 'Issuing')!.message, /refusing to replace secret default\/web-next-private-key/);
    assert.equal(web.status?.failedIssuanceAttempts, 1);
    assert.ok(r.events.some((e) => e.object === 'Certificate default/api' && e.action === 'issued'));
  });

  it('reissues when the spec changes, keeps the key with rotationPolicy Never', async () => {
    const { h } = setup();
    await h.apply(
      gen.selfSignedIssuer(),
      gen.certificate('web', withDNSNames('a.example'), withPrivateKey({ algorithm: 'ECDSA', rotationPolicy: 'Never' })),
    );
    await h.reconcile(T0);
    const key1 = (await secretOf(h, 'web')).secret.data['tls.key'].toString();
    await h.apply(
      gen.certificate('web', withDNSNames('a.example', 'b.example'), withPrivateKey({ algorithm: 'ECDSA', rotationPolicy: 'Never' })),
    );
    const r = await h.reconcile(new Date(T0.getTime() + 60_000));
    assert.ok(
      r.events.some((e) => e.action === 'renewed'),
      JSON.stringify(r.events),
    );
    const { secret, chain } = await secretOf(h, 'web');
    assert.deepEqual(chain[0].ext.san?.dnsNames.sort(), ['a.example', 'b.example']);
    assert.equal(secret.data['tls.key'].toString(), key1);
    assert.match(key1, /BEGIN EC PRIVATE KEY/);
  });

  it('dry run reports what would happen and writes nothing', async () => {
    const { h } = setup();
    await h.apply(gen.selfSignedIssuer(), gen.certificate('web', withNamespace('default')));
    const r = await h.reconcile(T0, true);
    assert.deepEqual(
      r.events.map((e) => e.action),
      ['would-issue'],
    );
    assert.equal(await h.secrets.get({ namespace: 'default', name: 'web' }), undefined);
    assert.equal((await h.get<Certificate>('Certificate', 'web')).status, undefined);
  });
});

function withSpec(patch: Record<string, unknown>) {
  return (o: { spec: Record<string, unknown> }) => Object.assign(o.spec, patch);
}
