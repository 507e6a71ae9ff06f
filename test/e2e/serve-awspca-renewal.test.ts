import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CaState } from '../../src/ca/state.js';
import { startPcaApi, type PcaApiHandle, type PcaCallRecord } from '../../src/server/pca/index.js';
import { opensslVerify } from '../helpers/openssl.js';
import { runMeshca } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { IstioCaClient } from './serve/ca-client.js';
import { ID, getJson, getText, metric, spawnServe, workloadCsr, type ServeProcess } from './serve/helpers.js';

const KEY = { id: 'AKIDMESHCARENEW01', secret: 'meshca-renew-secret-0123456789' };
const CREDS = { AWS_ACCESS_KEY_ID: KEY.id, AWS_SECRET_ACCESS_KEY: KEY.secret, AWS_REGION: 'us-east-1', AWS_EC2_METADATA_DISABLED: 'true' };

interface Upstream {
  ready: boolean;
  serial: string;
  remainingSeconds: number;
  lastError: { message: string; reason: string } | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Short intermediates (90 s, renewed 80 s before expiry, so every ~10 s) on `serve --workers 2`:
 * the primary alone talks to PCA and the workers reload each renewed intermediate.
 */
describe('serve --upstream awspca: renewal under load and a PCA outage, with worker processes', () => {
  const tmp = tempDir('meshca-serve-awspca-renew-');
  const dir = join(tmp.path, 'mesh');
  let state: CaState;
  let rootPem: string;
  let api: PcaApiHandle;
  let port: number;
  let arn: string;
  let serve: ServeProcess;
  let addr: { grpc: string; http: string };
  const calls: PcaCallRecord[] = [];
  const pca = (o: { addr?: string; injectThrottle?: number } = {}) =>
    startPcaApi({
      state,
      addr: o.addr ?? '127.0.0.1:0',
      accessKeys: [KEY],
      injectThrottle: o.injectThrottle,
      onCall: (r) => calls.push(r),
    });
  const upstream = async () => (await getJson<{ upstream: Upstream }>(addr.http, '/readyz')).body.upstream;

  // A client issuing certificates continuously; keeps the first leaf of each intermediate it sees.
  let token: string;
  let client: IstioCaClient;
  let failures: string[] = [];
  let ok = 0;
  const seen = new Map<string, { chain: string[]; at: number }>();
  let running = false;
  let loop: Promise<void> = Promise.resolve();
  const startLoop = () => {
    running = true;
    const csrs = Array.from({ length: 4 }, () => workloadCsr(ID('shop', 'cart')).csr);
    loop = (async () => {
      for (let i = 0; running; i++) {
        try {
          const res = await client.createCertificate({ csr: csrs[i % csrs.length], ttlSeconds: 3600 }, { token });
          const serial = new X509Certificate(res.certChain[1]).serialNumber;
          if (!seen.has(serial)) seen.set(serial, { chain: res.certChain, at: Math.floor(Date.now() / 1000) });
          ok++;
        } catch (e) {
          failures.push((e as Error).message);
        }
        await sleep(20);
      }
    })();
  };
  const stopLoop = async () => {
    running = false;
    await loop;
  };

  before(async () => {
    state = new CaState(join(tmp.path, 'pca'));
    rootPem = state.initRoot({ alg: 'ec-p256', subject: { organization: ['corp'], commonName: 'Renewal PCA' }, now: new Date() }).pem;
    // PCA throttles the first two IssueCertificate calls: serve must back off and retry with one token.
    api = await pca({ injectThrottle: 2 });
    port = api.port;
    arn = api.cas()[0].arn;
    serve = spawnServe(
      ['--dir', dir, '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--log-level', 'warn', '--workers', '2'].concat([
        '--upstream',
        'awspca',
        '--awspca-arn',
        arn,
        '--awspca-endpoint-url',
        api.url,
        '--intermediate-ttl',
        '90s',
        '--renew-before',
        '80s',
      ]),
      CREDS,
    );
    addr = await serve.ready;
    const t = await runMeshca(['token', '--dir', dir, '-n', 'shop', '-s', 'cart', '--ttl', '10m']);
    assert.equal(t.code, 0, t.stderr);
    token = t.stdout.trim();
    client = IstioCaClient.tls(addr.grpc, rootPem, { serverName: 'istiod.istio-system.svc' });
  });
  after(async () => {
    running = false;
    client?.close();
    await serve?.stop();
    await api?.close();
    tmp.cleanup();
  });

  it('throttled first issuance: retried with the same IdempotencyToken, one certificate', () => {
    // Only the first issuance: on a busy machine the 10 s renewal may already have followed it.
    const all = calls.filter((c) => c.operation === 'IssueCertificate');
    const issues = all.slice(0, all.findIndex((c) => !c.errorType) + 1);
    assert.deepEqual(
      issues.map((c) => c.errorType ?? 'ok'),
      ['ThrottlingException', 'ThrottlingException', 'ok'],
    );
    assert.equal(new Set(issues.map((c) => c.idempotencyToken)).size, 1);
  });

  it('renews the intermediate from PCA with no restart and no failed request; old and new chains verify', async () => {
    const first = (await upstream()).serial;
    startLoop();
    const deadline = Date.now() + 30_000;
    while ((await upstream()).serial === first && Date.now() < deadline) await sleep(250);
    // Let the workers reload and serve some requests with the new intermediate.
    await sleep(1500);
    await stopLoop();
    assert.deepEqual(failures, [], 'no request failed during the switch');
    assert.notEqual((await upstream()).serial, first, 'the intermediate was renewed');
    assert.ok(seen.size >= 2, `leaves from the old and the new intermediate (${seen.size} intermediates, ${ok} certificates)`);
    writeFileSync(join(tmp.path, 'root.pem'), rootPem);
    for (const [serial, { chain, at }] of seen) {
      writeFileSync(join(tmp.path, 'leaf.pem'), chain[0]);
      writeFileSync(join(tmp.path, 'inter.pem'), chain[1]);
      const v = opensslVerify(join(tmp.path, 'root.pem'), join(tmp.path, 'leaf.pem'), join(tmp.path, 'inter.pem'), [
        '-attime',
        String(at + 1),
      ]);
      assert.equal(v.code, 0, `intermediate ${serial}: ${v.stderr}${v.stdout}`);
    }
    // Only the primary talks to PCA: one IssueCertificate (after the throttled ones) per renewal.
    const m = await getText(addr.http, '/metrics');
    const renewals = metric(m, 'meshca_intermediate_renewals_total');
    const issued = calls.filter((c) => c.operation === 'IssueCertificate' && c.status === 200).length;
    assert.ok(renewals >= 2);
    assert.equal(issued, renewals, "every IssueCertificate is one of the primary's renewals");
  });

  it('keeps signing while PCA is unreachable: /readyz 200 with lastError and remainingSeconds, errors in metrics; recovers', async () => {
    await api.close();
    failures = [];
    seen.clear();
    startLoop();
    // A renewal falls due within ~10 s and fails after its capped-backoff retries.
    const deadline = Date.now() + 60_000;
    let u = await upstream();
    while (!u.lastError && Date.now() < deadline) {
      await sleep(500);
      u = await upstream();
    }
    const ready = await getJson<{ status: string; upstream: Upstream }>(addr.http, '/readyz');
    assert.equal(ready.status, 200, 'still ready: the current intermediate is valid');
    assert.equal(ready.body.upstream.ready, true);
    assert.ok(ready.body.upstream.lastError, 'the failed renewal is shown');
    assert.match(ready.body.upstream.lastError.message, /AWS Private CA/);
    assert.ok(ready.body.upstream.remainingSeconds > 0);
    const m = await getText(addr.http, '/metrics');
    const errors = m.split('\n').filter((l) => l.startsWith('meshca_upstream_errors_total{type="awspca"'));
    assert.ok(errors.length > 0 && errors.every((l) => Number(l.split(' ').pop()) > 0), errors.join('\n'));
    assert.ok(metric(m, 'meshca_intermediate_remaining_seconds') > 0);
    // What the alerting rules read (deploy/prometheus/): every failed renewal counted, and the
    // intermediate still inside its renewal window.
    const errorCount = errors.reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    assert.equal(metric(m, 'meshca_intermediate_renewal_failures_total{cluster="default"}'), errorCount);
    assert.ok(metric(m, 'meshca_ca_cert_renewal_timestamp_seconds{cluster="default"}') <= Date.now() / 1000);
    const before = ok;
    await sleep(500);
    assert.ok(ok > before, 'certificates are still being issued');

    // PCA comes back on the same address: the next retry renews, and the error clears.
    const stale = ready.body.upstream.serial;
    api = await pca({ addr: `127.0.0.1:${port}` });
    const back = Date.now() + 40_000;
    while (((u = await upstream()).lastError || u.serial === stale) && Date.now() < back) await sleep(500);
    await stopLoop();
    assert.equal(u.lastError, null);
    assert.notEqual(u.serial, stale);
    // The renewed intermediate's window is ahead again, which clears the renewal alerts.
    const renewed = metric(await getText(addr.http, '/metrics'), 'meshca_ca_cert_renewal_timestamp_seconds{cluster="default"}');
    assert.ok(renewed > Date.now() / 1000, String(renewed));
    assert.deepEqual(failures, [], 'no request failed during the outage');
  });
});
