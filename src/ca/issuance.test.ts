import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { makeIntermediate, makeRoot } from '../../test/helpers/pki.js';
import type { AuthResult, Authenticator } from '../auth/types.js';
import { h2CreateCertificateHandler } from '../server/grpc/service.js';
import { createCsr } from '../pki/csr.js';
import { MeshcaError } from '../pki/errors.js';
import { generateKeyPair } from '../pki/keys.js';
import type { AuditEntry, Store } from '../store/index.js';
import { RequestType, ResponseType } from '../proto/istio-ca.js';
import { Authority, type SignResult } from './authority.js';
import { IssuanceService, type IssuanceDeps, type IssuanceObserver } from './issuance.js';
import { RateLimiter } from './rate-limit.js';
import { RemoteWorkloadSigner, type WorkloadSigner } from './workload-signer.js';

const ID = 'spiffe://cluster.local/ns/shop/sa/cart';
const CALLER: AuthResult = { identities: [ID], caller: ID, method: 'local-token' };

function authority() {
  const now = new Date();
  const root = makeRoot({ now: new Date(now.getTime() - 60_000) });
  const inter = makeIntermediate(root, { now: new Date(now.getTime() - 60_000) });
  return new Authority(
    { signer: { cert: inter.cert, key: inter.key, chain: [root.cert] }, roots: [root.cert] },
    {
      trustDomain: 'cluster.local',
      trustDomainAliases: [],
      defaultTtlSeconds: 3600,
      maxTtlSeconds: 86400,
      maxCsrBytes: 32768,
      impersonationAllow: [],
    },
  );
}

/** An authenticator that answers as a token cache would: synchronously for a known token, by promise otherwise. */
function authenticator(): Authenticator {
  return {
    authenticate: (c) => {
      if (c.token === 'cached') return CALLER;
      if (c.token === 'fresh') return new Promise((r) => setImmediate(() => r(CALLER)));
      return Promise.reject(new MeshcaError('unauthenticated', 'bad_token', 'not a token this test knows'));
    },
  };
}

function service(o: { rate?: number; workloadSigner?: WorkloadSigner; store?: Store; deps?: Partial<IssuanceDeps> } = {}) {
  const rows: AuditEntry[] = [];
  const store = o.store ?? ({ appendAudit: (e: AuditEntry) => void rows.push(e) } as unknown as Store);
  const svc = new IssuanceService({
    authenticator: authenticator(),
    authority: authority(),
    store,
    limiter: new RateLimiter(o.rate ?? 0, 1),
    cluster: 'c1',
    workloadSigner: o.workloadSigner,
    ...o.deps,
  });
  return { svc, rows };
}

const csr = (id = ID) => createCsr({ key: generateKeyPair('ec-p256').privateKey, sans: { uris: [id] } }).pem;

function assertIssued(r: SignResult) {
  const leaf = new X509Certificate(r.chain[0]);
  assert.equal(leaf.subjectAltName, `URI:${ID}`);
  assert.ok(leaf.verify(new X509Certificate(r.chain[1]).publicKey), 'the leaf verifies against the intermediate (node:crypto)');
}

test('a cached caller and the local signer: the certificate comes back synchronously, audited', () => {
  const { svc, rows } = service();
  const r = svc.issue({ credentials: { token: 'cached' }, csr: csr(), ttlSeconds: 600, clientCluster: 'east' });
  assert.ok(!(r instanceof Promise), 'no promise on the hot path');
  assertIssued(r);
  assert.equal(rows.length, 1);
  assert.deepEqual(
    [rows[0].outcome, rows[0].identity, rows[0].caller, rows[0].cluster, rows[0].clientCluster, rows[0].serial],
    ['issued', ID, ID, 'c1', 'east', r.issued.serialHex],
  );
});

test('a caller that needs I/O to authenticate: a promise of the same result', async () => {
  const { svc, rows } = service();
  const p = svc.issue({ credentials: { token: 'fresh' }, csr: csr(), ttlSeconds: 600 });
  assert.ok(p instanceof Promise);
  assert.equal(rows.length, 0, 'nothing is audited before the caller is known');
  assertIssued(await p);
  assert.equal(rows[0].outcome, 'issued');
});

test('a remote signer is awaited; its refusal is audited with the caller', async () => {
  let calls = 0;
  const remote: WorkloadSigner = {
    sign: async () => {
      calls++;
      throw new MeshcaError('permission_denied', 'upstream_refused', 'upstream says no');
    },
  } as unknown as WorkloadSigner;
  const { svc, rows } = service({ workloadSigner: remote });
  const p = svc.issue({ credentials: { token: 'cached' }, csr: csr(), ttlSeconds: 600 });
  assert.ok(p instanceof Promise);
  await assert.rejects(p, (e: { reason?: string }) => e.reason === 'upstream_refused');
  assert.equal(calls, 1);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].outcome, 'refused');
  assert.equal(rows[0].caller, ID, 'the refusal names the authenticated caller');
});

test('every refusal is a rejected promise, never a synchronous throw, and is audited', async () => {
  const { svc, rows } = service();
  const cases: [string, () => unknown, string][] = [
    ['bad token', () => svc.issue({ credentials: { token: 'nope' }, csr: csr(), ttlSeconds: 600 }), 'bad_token'],
    ['not a CSR', () => svc.issue({ credentials: { token: 'cached' }, csr: 'garbage', ttlSeconds: 600 }), 'bad_pem'],
    [
      'an identity the caller does not have',
      () => svc.issue({ credentials: { token: 'cached' }, csr: csr('spiffe://cluster.local/ns/shop/sa/other'), ttlSeconds: 600 }),
      'identity_mismatch',
    ],
  ];
  for (const [name, call, reason] of cases) {
    let r: unknown;
    assert.doesNotThrow(() => (r = call()), name);
    assert.ok(r instanceof Promise, `${name}: a promise`);
    await assert.rejects(r as Promise<unknown>, (e: { reason?: string }) => e.reason === reason, name);
  }
  assert.deepEqual(
    rows.map((x) => [x.outcome, x.reason]),
    cases.map(([, , reason]) => ['refused', reason]),
  );
  assert.equal(rows[0].caller, '', 'an unauthenticated refusal names no caller');
  assert.equal(rows[2].identity, 'spiffe://cluster.local/ns/shop/sa/other', 'the refusal records the identity asked for');
});

test('the rate limiter refuses by rejected promise too', async () => {
  // 1 per second, burst 1: the caller's second certificate within the second is refused.
  const { svc, rows } = service({ rate: 1 });
  const ok = svc.issue({ credentials: { token: 'cached' }, csr: csr(), ttlSeconds: 600 });
  assert.ok(!(ok instanceof Promise));
  const limited = svc.issue({ credentials: { token: 'cached' }, csr: csr(), ttlSeconds: 600 });
  assert.ok(limited instanceof Promise);
  await assert.rejects(limited, (e: { code?: string; reason?: string }) => e.code === 'resource_exhausted' && e.reason === 'rate_limited');
  assert.deepEqual(
    rows.map((x) => [x.outcome, x.reason]),
    [
      ['issued', 'issued'],
      ['refused', 'rate_limited'],
    ],
  );
});

test('a store that cannot take the audit row refuses the certificate (rejected, not thrown)', async () => {
  const store = {
    appendAudit: () => {
      throw new Error('the store is closed');
    },
  } as unknown as Store;
  const { svc } = service({ store });
  const r = svc.issue({ credentials: { token: 'cached' }, csr: csr(), ttlSeconds: 600 });
  assert.ok(r instanceof Promise);
  await assert.rejects(r, /the store is closed/);
});

test('the HTTP/2 handler answers a cached caller with the encoded response in the same turn', async () => {
  const { svc } = service();
  const handler = h2CreateCertificateHandler(svc);
  const message = Buffer.from(RequestType.encode({ csr: csr(), validity_duration: 600 }).finish());
  const call = (token: string) => handler({ message, headers: { authorization: `Bearer ${token}` }, peer: 'test' });
  const sync = call('cached');
  assert.ok(Buffer.isBuffer(sync), 'a Buffer, not a promise');
  const decoded = ResponseType.decode(sync as Buffer) as unknown as { cert_chain: string[]; root_cert: { ca_cert: string[] } };
  assert.equal(new X509Certificate(decoded.cert_chain[0]).subjectAltName, `URI:${ID}`);
  assert.equal(decoded.root_cert.ca_cert.length, 1);
  const later = call('fresh');
  assert.ok(later instanceof Promise);
  assert.ok(Buffer.isBuffer(await later));
  await assert.rejects(Promise.resolve(call('nope')) as Promise<unknown>, (e: { reason?: string }) => e.reason === 'bad_token');
});

test('RA mode: a CSR asking for CA powers is refused invalid_argument ca_not_allowed, audited, never sent upstream', async () => {
  let calls = 0;
  const upstream = {
    source: 'test',
    signWorkload: async () => {
      calls++;
      throw new Error('must not be called');
    },
  };
  const a = authority();
  const remote = new RemoteWorkloadSigner(a, upstream, () => a.roots);
  const { svc, rows } = service({ workloadSigner: remote });
  const caCsr = createCsr({ key: generateKeyPair('ec-p256').privateKey, sans: { uris: [ID] }, isCA: true }).pem;
  await assert.rejects(
    Promise.resolve(svc.issue({ credentials: { token: 'cached' }, csr: caCsr, ttlSeconds: 600 })),
    (e: { code?: string; reason?: string }) => e.code === 'invalid_argument' && e.reason === 'ca_not_allowed',
  );
  assert.equal(calls, 0);
  assert.deepEqual(
    rows.map((x) => [x.outcome, x.reason, x.caller]),
    [['refused', 'ca_not_allowed', ID]],
  );
});

test('local signing: a CSR asking for CA powers is refused invalid_argument ca_not_allowed and audited', async () => {
  const { svc, rows } = service();
  const caCsr = createCsr({ key: generateKeyPair('ec-p256').privateKey, sans: { uris: [ID] }, isCA: true }).pem;
  const r = svc.issue({ credentials: { token: 'cached' }, csr: caCsr, ttlSeconds: 600 });
  await assert.rejects(
    Promise.resolve(r),
    (e: { code?: string; reason?: string }) => e.code === 'invalid_argument' && e.reason === 'ca_not_allowed',
  );
  assert.deepEqual(
    rows.map((x) => [x.outcome, x.reason, x.identity]),
    [['refused', 'ca_not_allowed', ID]],
  );
});

test('a client cluster ID that is not bounded printable ASCII is refused bad_cluster_id, and audited escaped', async () => {
  const { svc, rows } = service();
  const bad = ['east\nreason=issued', 'x'.repeat(254), 'nul\u0000', 'caf\u00e9', '\u001b[31mred'];
  for (const id of bad) {
    const r = svc.issue({ credentials: { token: 'cached' }, csr: csr(), ttlSeconds: 600, clientCluster: id });
    await assert.rejects(
      Promise.resolve(r),
      (e: { code?: string; reason?: string }) => e.code === 'invalid_argument' && e.reason === 'bad_cluster_id',
      JSON.stringify(id),
    );
  }
  assert.equal(rows.length, bad.length);
  for (const [i, row] of rows.entries()) {
    assert.deepEqual([row.outcome, row.reason, row.caller], ['refused', 'bad_cluster_id', ID]);
    assert.notEqual(row.clientCluster, bad[i], 'the raw value is not written');
    assert.match(row.clientCluster ?? '', /^[\x20-\x7e]{1,203}$/);
    assert.match(row.message ?? '', /^[\x20-\x7e]*$/);
  }
  assert.equal(rows[0].clientCluster, 'east\\nreason=issued');
  for (const id of ['Kubernetes', 'east-1', 'cluster_2.prod', 'x'.repeat(253)]) {
    const r = svc.issue({ credentials: { token: 'cached' }, csr: csr(), ttlSeconds: 600, clientCluster: id });
    assert.ok(!(r instanceof Promise), id);
    assert.equal(rows.at(-1)?.clientCluster, id);
  }
});

test('refusals of unknown callers are audited up to a bound; the rest are counted in one summary row', async () => {
  let t = Date.parse('2031-01-01T00:00:00Z');
  const suppressed: string[] = [];
  const observer: IssuanceObserver = { begin() {}, issued() {}, refused() {}, suppressed: (r) => void suppressed.push(r.reason) };
  const { svc, rows } = service({ deps: { now: () => new Date(t), observer, unauthenticatedAuditRate: 10, unauthenticatedAuditBurst: 5 } });
  const garbage = () => svc.issue({ credentials: { token: 'nope' }, csr: csr(), ttlSeconds: 600 });
  const outcomes = await Promise.allSettled(Array.from({ length: 50 }, () => Promise.resolve(garbage())));
  assert.ok(outcomes.every((o) => o.status === 'rejected'));
  assert.equal(rows.length, 5, 'the burst is written, the rest is not');
  assert.equal(suppressed.length, 45);
  // Authenticated refusals and certificates are never held back.
  await assert.rejects(
    Promise.resolve(svc.issue({ credentials: { token: 'cached' }, csr: csr('spiffe://cluster.local/ns/shop/sa/other'), ttlSeconds: 600 })),
  );
  assert.ok(!(svc.issue({ credentials: { token: 'cached' }, csr: csr(), ttlSeconds: 600 }) instanceof Promise));
  assert.deepEqual(
    rows.slice(5).map((r) => r.reason),
    ['identity_mismatch', 'issued'],
  );
  // Half a second later the bucket has 5 more rows.
  t += 500;
  await Promise.allSettled(Array.from({ length: 8 }, () => Promise.resolve(garbage())));
  assert.equal(rows.filter((r) => r.reason === 'bad_token').length, 10);
  svc.close();
  const summary = rows.at(-1)!;
  assert.deepEqual([summary.outcome, summary.reason, summary.caller], ['refused', 'refusals_suppressed', '']);
  assert.equal(
    summary.message,
    '48 unauthenticated refusals not audited individually since 2031-01-01T00:00:00.000Z; reasons: bad_token=48',
  );
  svc.close();
  assert.equal(rows.at(-1), summary, 'a summary is written once');
});

test('the summary of suppressed refusals is written within a second without further requests', async () => {
  const { svc, rows } = service({ deps: { unauthenticatedAuditRate: 1, unauthenticatedAuditBurst: 1 } });
  await Promise.allSettled(
    Array.from({ length: 4 }, () => Promise.resolve(svc.issue({ credentials: { token: 'nope' }, csr: csr(), ttlSeconds: 600 }))),
  );
  assert.equal(rows.length, 1);
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(rows.length, 2);
  assert.equal(rows[1].reason, 'refusals_suppressed');
  assert.match(rows[1].message ?? '', /^3 unauthenticated refusals not audited individually since \S+; reasons: bad_token=3$/);
  svc.close();
});
