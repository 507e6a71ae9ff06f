import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startPostgres, type PgCluster } from '../../test/helpers/postgres.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { createCsr } from '../pki/csr.js';
import { generateKeyPair } from '../pki/keys.js';
import { startPcaApi, type PcaApiHandle, type PcaCallRecord } from '../server/pca/index.js';
import { openPgStore, type PgStore } from '../store/postgres/index.js';
import { AwsPcaUpstream, awsPcaUpstreamSchema } from '../upstream/awspca/index.js';
import { keyPem } from './bundle.js';
import type { MaterialLog } from './material-renewal.js';
import { bootstrapFromUpstream, mintFromUpstream, type UpstreamMintDeps } from './material-upstream.js';
import { CaState } from './state.js';

const KEY = { id: 'AKIDMESHCAMINT001', secret: 'meshca-mint-secret-0123456789' };
const tmp = tempDir('meshca-mint-upstream-');
let cluster: PgCluster;
let api: PcaApiHandle;
let upstream: AwsPcaUpstream;
const calls: PcaCallRecord[] = [];
let n = 0;

before(async () => {
  cluster = await startPostgres();
  const state = new CaState(join(tmp.path, 'pca'));
  state.initRoot({ alg: 'ec-p256', subject: { organization: ['corp'], commonName: 'Mint PCA root' }, now: new Date() });
  api = await startPcaApi({ state, addr: '127.0.0.1:0', accessKeys: [KEY], onCall: (r) => calls.push(r) });
  upstream = new AwsPcaUpstream(
    awsPcaUpstreamSchema.parse({ type: 'awspca', arn: api.cas()[0].arn, endpointUrl: api.url, pollIntervalMs: 50, region: 'us-east-1' }),
    {},
    { credentials: { accessKeyId: KEY.id, secretAccessKey: KEY.secret } },
  );
});
after(async () => {
  upstream?.close();
  await api?.close();
  await cluster?.stop();
  tmp.cleanup();
});

const silent: MaterialLog = { info: () => {}, warn: () => {}, error: () => {} };
const options = {
  cluster: 'default',
  trustDomain: 'cluster.local',
  keyAlgorithm: 'ec-p256' as const,
  intermediateTtlSeconds: 3600,
  passphrase: 'pw',
};
const deps = (db: PgStore, replica: string, extra: Partial<UpstreamMintDeps> = {}): UpstreamMintDeps => ({
  db,
  upstream,
  options: { ...options, replica },
  now: () => new Date(),
  log: silent,
  ...extra,
});
const issues = () => calls.filter((c) => c.operation === 'IssueCertificate' && !c.errorType).length;

async function store(): Promise<PgStore> {
  return openPgStore(await cluster.createDatabase(`mint_${++n}`));
}

test('replicas bootstrapping together get one intermediate from PCA; its key and request are stored encrypted', async () => {
  const url = await cluster.createDatabase(`mint_${++n}`);
  const stores = await Promise.all([1, 2, 3].map(() => openPgStore(url)));
  try {
    const certsBefore = api.service.stats.issued;
    const boots = await Promise.all(stores.map((s, i) => bootstrapFromUpstream(s, deps(s, `r${i}`))));
    assert.equal(boots.filter((b) => b.created).length, 1);
    assert.equal(new Set(boots.map((b) => b.bundle.caCert.fingerprint256)).size, 1);
    assert.equal(api.service.stats.issued - certsBefore, 1, 'one PCA certificate');
    const [row] = await stores[0].materialHistory('intermediate', 'default');
    assert.match(row.keyPem ?? '', /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    const p = await stores[0].pendingRenewal('default', 1);
    assert.match(p?.keyPem ?? '', /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    assert.ok(p?.certificateRef?.startsWith(`${api.cas()[0].arn}/certificate/`));
    // A restart finds it from this upstream, and asks PCA nothing.
    const again = await bootstrapFromUpstream(stores[1], deps(stores[1], 'r9'));
    assert.equal(again.created, false);
    assert.equal(api.service.stats.issued - certsBefore, 1);
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
});

test('a request whose ARN was recorded is collected with GetCertificate: no IssueCertificate', async () => {
  const db = await store();
  try {
    const key = generateKeyPair('ec-p256').privateKey;
    const csr = createCsr({ key, subject: { commonName: 'left behind' }, isCA: true }).pem;
    const at = new Date();
    const arn = await upstream.requestIntermediate({ csrPem: csr, ttlSeconds: 3600, token: 'tok-known-arn', at });
    await db.beginRenewal({
      cluster: 'default',
      generation: 2,
      upstream: upstream.source,
      keyPem: keyPem(key, 'pw'),
      csrPem: csr,
      idempotencyToken: 'tok-known-arn',
      requestedAt: at,
      createdBy: 'dead-leader',
    });
    await db.recordRenewalRef('default', 2, arn);
    const before = issues();
    const b = await mintFromUpstream(deps(db, 'next-leader'), 2);
    assert.equal(issues(), before, 'no IssueCertificate');
    assert.ok(b.caCert.publicKey.equals((await import('node:crypto')).createPublicKey(key)));
    assert.equal(b.roots[0].subject, b.chain[b.chain.length - 1].subject);
  } finally {
    await db.close();
  }
});

test('a request without its ARN is repeated with the same token: PCA answers with the same certificate', async () => {
  const db = await store();
  try {
    const key = generateKeyPair('ec-p256').privateKey;
    const csr = createCsr({ key, subject: { commonName: 'token only' }, isCA: true }).pem;
    const at = new Date(Date.now() - 1000);
    await db.beginRenewal({
      cluster: 'default',
      generation: 3,
      upstream: upstream.source,
      keyPem: keyPem(key, 'pw'),
      csrPem: csr,
      idempotencyToken: 'tok-no-arn',
      requestedAt: at,
      createdBy: 'dead-leader',
    });
    // The dead leader's call reached PCA; its answer was never recorded.
    const arn = await upstream.requestIntermediate({ csrPem: csr, ttlSeconds: 3600, token: 'tok-no-arn', at });
    const certs = api.service.stats.issued;
    const replays = api.service.stats.idempotentReplays;
    await mintFromUpstream(deps(db, 'next-leader'), 3);
    assert.equal(api.service.stats.issued, certs, 'no second certificate');
    assert.equal(api.service.stats.idempotentReplays, replays + 1);
    assert.equal((await db.pendingRenewal('default', 3))?.certificateRef, arn);
  } finally {
    await db.close();
  }
});

test('without leadership nothing is written and PCA is not called; a request for another upstream is replaced', async () => {
  const db = await store();
  try {
    const before = issues();
    await assert.rejects(mintFromUpstream(deps(db, 'ex-leader', { fence: () => undefined }), 2), /leadership lost/);
    assert.equal(issues(), before);
    assert.equal(await db.pendingRenewal('default', 2), undefined);
    await db.beginRenewal({
      cluster: 'default',
      generation: 2,
      upstream: 'arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/other',
      keyPem: 'x',
      csrPem: 'y',
      idempotencyToken: 'z',
      requestedAt: new Date(),
      certificateRef: 'gone',
      createdBy: 'old',
    });
    await mintFromUpstream(deps(db, 'leader'), 2);
    const p = await db.pendingRenewal('default', 2);
    assert.equal(p?.upstream, upstream.source);
    assert.notEqual(p?.idempotencyToken, 'z');
    assert.equal(issues(), before + 1);
  } finally {
    await db.close();
  }
});
