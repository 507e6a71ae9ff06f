import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { CaState } from '../../src/ca/state.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';
import { decodePng, imageVariety } from './dashboard-png.js';
import { IstioCaClient } from './serve/ca-client.js';
import { ID, workloadCsr } from './serve/helpers.js';

/**
 * The operator dashboard in a real headless Chromium (Debian's `chromium` driven by
 * playwright-core): a hierarchy with one cluster intermediate in each expiry state, issuances and
 * refusals driven through the gRPC API, then the DOM checked, the page checked for errors and for
 * requests leaving the server (it must work offline), and a full-page screenshot checked to be a
 * real, non-blank PNG.
 */

const CHROMIUM = process.env.MESHCA_CHROMIUM ?? '/usr/bin/chromium';
const DAY = 86_400_000;
const tmp = tempDir('meshca-dashboard-');
let server: RunningServer;
let browser: Browser;

before(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} not found: install the Debian package chromium (.ci/run does) or set MESHCA_CHROMIUM`);
  const now = Date.now();
  // Root made 500 days ago; intermediates made at different ages so that each expiry state shows.
  const state = new CaState(tmp.path);
  state.initRoot({ alg: 'ec-p256', subject: { organization: ['cluster.local'] }, days: 3650, now: new Date(now - 500 * DAY) });
  state.createIntermediate('default', { alg: 'ec-p256', days: 365, now: new Date(now) });
  state.createIntermediate('east', { alg: 'ec-p256', days: 365, now: new Date(now - 250 * DAY) }); // 115 of 365 days left: renewal window
  state.createIntermediate('west', { alg: 'ec-p256', days: 365, now: new Date(now - 361 * DAY) }); // 4 days left: last tenth
  state.createIntermediate('legacy', { alg: 'ec-p256', days: 365, now: new Date(now - 400 * DAY) }); // expired
  server = await startServer({
    dir: tmp.path,
    grpcAddr: '127.0.0.1:0',
    httpAddr: '127.0.0.1:0',
    logLevel: 'silent',
    rateLimit: 0,
    maxTtl: '48h',
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
  if (process.env.MESHCA_KEEP_ARTIFACTS) console.log(`# artifacts kept in ${tmp.path}`);
  else tmp.cleanup();
});

async function driveTraffic(): Promise<{ issued: number; refusals: string[] }> {
  const client = IstioCaClient.tls(server.grpcAddress, server.rootPem);
  try {
    const token = await server.issueToken({ namespace: 'shop', serviceAccount: 'cart' });
    for (let i = 0; i < 5; i++) await client.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr }, { token });
    const refuse = (p: Promise<unknown>) =>
      p.then(
        () => assert.fail('expected a refusal'),
        () => undefined,
      );
    await refuse(client.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr }, {}));
    await refuse(client.createCertificate({ csr: workloadCsr(ID('shop', 'payments')).csr }, { token }));
    await refuse(client.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr, ttlSeconds: 30 * 86400 }, { token }));
    await refuse(client.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr }, { token: 'not-a-jwt' }));
    return { issued: 5, refusals: ['no_credentials', 'identity_mismatch', 'ttl_too_long', 'malformed_token'] };
  } finally {
    client.close();
  }
}

test('GET /v1/dashboard: hierarchy with expiry classes, per-minute rates, refusals with reasons', async () => {
  const traffic = await driveTraffic();
  const res = await fetch(`http://${server.httpAddress}/v1/dashboard`);
  assert.equal(res.status, 200);
  const d = (await res.json()) as {
    hierarchy: {
      roots: { expiry: string; intermediates: { cluster: string; expiry: string; signing: boolean; workloads: { valid: number } }[] }[];
    };
    rates: { buckets: unknown[]; issued: number; refused: number };
    refusals: { reason: string; identity: string }[];
    replica: { leader: boolean; store: string };
    rotation: unknown;
  };
  assert.equal(d.hierarchy.roots.length, 1);
  const byCluster = Object.fromEntries(d.hierarchy.roots[0].intermediates.map((i) => [i.cluster, i]));
  assert.deepEqual(Object.fromEntries(Object.entries(byCluster).map(([c, i]) => [c, i.expiry])), {
    default: 'ok',
    east: 'warn',
    west: 'critical',
    legacy: 'expired',
  });
  assert.equal(byCluster.default.signing, true);
  assert.equal(byCluster.default.workloads.valid, traffic.issued);
  assert.equal(d.rates.buckets.length, 60);
  assert.equal(d.rates.issued, traffic.issued);
  assert.equal(d.rates.refused, traffic.refusals.length);
  assert.deepEqual(d.refusals.map((r) => r.reason).sort(), [...traffic.refusals].sort());
  assert.equal(d.refusals.find((r) => r.reason === 'identity_mismatch')?.identity, ID('shop', 'payments'));
  assert.deepEqual(d.replica, { ...d.replica, leader: true, store: 'sqlite' });
  assert.equal(d.rotation, null);
});

test('the page in headless Chromium: tree, chart, refusal rows, offline, no errors; screenshot is a real PNG', async () => {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1, colorScheme: 'dark' });
  const page = await context.newPage();
  const problems: string[] = [];
  const foreign: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(`http://${server.httpAddress}/`) && !r.url().startsWith('data:')) foreign.push(r.url());
  });
  const res = await page.goto(`http://${server.httpAddress}/`);
  assert.equal(res?.status(), 200);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });

  // Hierarchy: a root, four cluster intermediates each in its own expiry class, workload counts.
  assert.equal(await page.locator('.node[data-kind="root"].expiry-ok').count(), 1);
  for (const [cluster, cls] of [
    ['default', 'ok'],
    ['east', 'warn'],
    ['west', 'critical'],
    ['legacy', 'expired'],
  ]) {
    assert.equal(
      await page.locator(`.node[data-kind="intermediate"][data-cluster="${cluster}"].expiry-${cls}`).count(),
      1,
      `${cluster} is ${cls}`,
    );
  }
  assert.equal(await page.locator('.node[data-kind="workloads"]').count(), 4);
  assert.match(await page.locator('.node[data-kind="workloads"][data-cluster="default"] .count').innerText(), /^[1-9]\d*$/);
  assert.match(await page.locator('.node[data-kind="intermediate"][data-cluster="legacy"] .rel').innerText(), /^expired .* ago$/);

  // The rate chart: inline SVG with issued and refused bars.
  assert.ok((await page.locator('#rates-svg rect.bar-issued').count()) >= 1, 'issued bars');
  assert.ok((await page.locator('#rates-svg rect.bar-refused').count()) >= 1, 'refused bars');

  // Refusal rows carry their reasons; the table shows what was asked for.
  const reasons = await page.locator('#refusals tr.refusal td.reason').allInnerTexts();
  for (const r of ['no_credentials', 'identity_mismatch', 'ttl_too_long', 'malformed_token'])
    assert.ok(reasons.includes(r), `refusal row ${r} in ${reasons.join(', ')}`);
  assert.equal(await page.locator('#refusals tr[data-reason="identity_mismatch"] td.identity').innerText(), ID('shop', 'payments'));
  assert.ok((await page.locator('#reasons .reason-row').count()) >= 4);

  // Rotation and upstreams say "not configured" rather than failing; this process leads.
  assert.equal(await page.locator('#rotation [data-state="not-configured"]').count(), 1);
  assert.equal(await page.locator('#upstreams li[data-kind="pca"][data-status="not_configured"]').count(), 1);
  assert.equal(await page.locator('#upstreams li[data-kind="kubernetes"]').count(), 1);
  assert.equal(await page.locator('#replica[data-leader="true"]').count(), 1);
  assert.ok((await page.locator('#timeline .tl-item').count()) >= 4, 'timeline entries');
  assert.ok((await page.locator('#kpis .kpi').count()) === 5);

  // Every card's small print is shown whole: nothing cut off by its box (no ellipsis, no clipping).
  // Run in the page (a string, since this file is compiled without DOM types).
  const clipped = await page.evaluate<string[]>(`(() => {
    const out = [];
    for (const el of document.querySelectorAll('.kpi, .kpi .label, .kpi .hint, .node, .node .kind, .node .when, .node .chip')) {
      if (el.scrollWidth > el.clientWidth || el.scrollHeight > el.clientHeight)
        out.push((el.id || el.className) + ' "' + el.innerText.slice(0, 80) + '": ' + el.scrollWidth + 'x' + el.scrollHeight + ' in ' + el.clientWidth + 'x' + el.clientHeight);
    }
    return out;
  })()`);
  assert.deepEqual(clipped, [], 'small print clipped');

  assert.deepEqual(problems, [], 'no console errors (a CSP violation would show here)');
  assert.deepEqual(foreign, [], 'nothing fetched from anywhere but the server');

  const shot = join(tmp.path, 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  const png = decodePng(readFileSync(shot));
  assert.ok(png.width >= 1400 && png.height >= 900, `screenshot ${png.width}x${png.height}`);
  const v = imageVariety(png);
  assert.ok(
    v.colours > 50 && v.nonBackground > 0.2,
    `screenshot is not blank: ${v.colours} colours, ${(v.nonBackground * 100).toFixed(1)}% not background`,
  );
  console.log(
    `# dashboard screenshot ${shot}: ${png.width}x${png.height}, ${v.colours} colours, ${(v.nonBackground * 100).toFixed(0)}% drawn`,
  );
  await context.close();
});
