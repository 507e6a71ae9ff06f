/**
 * "A renewed CA secret is picked up by `meshca serve` without restart and without a failed
 * request": clients issue certificates continuously while another process (`meshca reconcile
 * --at`) renews the served cluster's intermediate. Once as a single process, once with gRPC
 * workers, which reload when the primary tells them over IPC.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseCertificate, parseCertificates } from '../../src/pki/certificate.js';
import { verifyChain } from '../../src/pki/chain.js';
import { runMeshca, ok } from '../helpers/run.js';
import { tempDir } from '../helpers/tmp.js';
import { IstioCaClient } from './serve/ca-client.js';
import { ID, metric, workloadCsr } from './serve/helpers.js';
import { spawnMeshca, waitFor, type Child, rootTrustPolicyYaml } from './reload-helpers.js';

// One-day intermediates renewed when 99.8786% of the life is left: due 45 s after issuance (with
// the 60 s back-dating), so `reconcile --at now+50s` renews one that is valid now, and the
// server's own controllers would not renew it before this test ends.
const POLICY = rootTrustPolicyYaml({ ttlDays: 1, secretRotationGracePeriodRatio: 0.998786 });

const tmp = tempDir('meshca-reload-');
const children: Child[] = [];
after(async () => {
  for (const c of children) await c.stop();
  tmp.cleanup();
});

interface Observed {
  requests: number;
  failures: string[];
  /** Intermediate PEM -> how many certificates it signed, in order of first appearance. */
  intermediates: Map<string, number>;
  /** One full chain (leaf..root) per intermediate. */
  chains: Map<string, string[]>;
}

/**
 * `clients` channels (connections: with workers, node:cluster spreads them), each issuing in a
 * loop; every 25 requests a channel is replaced so that new handshakes meet the current serving
 * certificate too.
 */
function issueContinuously(grpc: string, rootPem: string, token: string, clients: number): { observed: Observed; stop(): Promise<void> } {
  const observed: Observed = { requests: 0, failures: [], intermediates: new Map(), chains: new Map() };
  let stopping = false;
  const worker = async (n: number) => {
    let c = IstioCaClient.tls(grpc, rootPem, { serverName: 'istiod.istio-system.svc' });
    for (let i = 0; !stopping; i++) {
      if (i > 0 && i % 25 === 0) {
        c.close();
        c = IstioCaClient.tls(grpc, rootPem, { serverName: 'istiod.istio-system.svc' });
      }
      observed.requests++;
      try {
        const r = await c.createCertificate({ csr: workloadCsr(ID('shop', `cart`)).csr }, { token });
        const inter = r.certChain[1];
        observed.intermediates.set(inter, (observed.intermediates.get(inter) ?? 0) + 1);
        if (!observed.chains.has(inter)) observed.chains.set(inter, r.certChain);
      } catch (e) {
        observed.failures.push(`client ${n}: ${(e as Error).message}`);
      }
    }
    c.close();
  };
  const running = Array.from({ length: clients }, (_, n) => worker(n));
  return {
    observed,
    stop: async () => {
      stopping = true;
      await Promise.all(running);
    },
  };
}

async function scenario(name: string, extra: string[]): Promise<void> {
  const dir = join(tmp.path, name);
  const meshca = (args: string[]) => runMeshca([...args, '--dir', dir], { timeoutMs: 60_000 });
  ok(await meshca(['cluster', 'add', 'default', '--no-reconcile']), 'cluster add');
  writeFileSync(join(tmp.path, `${name}-policy.yaml`), POLICY);
  ok(await meshca(['apply', '-f', join(tmp.path, `${name}-policy.yaml`)]), 'apply policy');

  // The client loop is one caller going as fast as it can: no per-caller rate limit here.
  const serve = spawnMeshca([
    'serve',
    '--dir',
    dir,
    '--grpc-addr',
    '127.0.0.1:0',
    '--http-addr',
    '127.0.0.1:0',
    '--log-level',
    'info',
    '--rate-limit',
    '0',
    ...extra,
  ]);
  children.push(serve);
  const listening = await serve.ready;
  const grpc = String(listening.grpc);
  const http = String(listening.http);
  const rootPem = ((await (await fetch(`http://${http}/v1/trust-bundle`)).json()) as { roots: string[] }).roots[0];
  const token = ok(await runMeshca(['token', '--dir', dir, '-n', 'shop', '-s', 'cart']), 'token').stdout.trim();

  const load = issueContinuously(grpc, rootPem, token, 4);
  let observed: Observed;
  try {
    await waitFor('the first certificates', () => load.observed.intermediates.size > 0 || undefined, 20_000);
    const before = [...load.observed.intermediates.keys()][0];
    // Another process renews the intermediate, "as if" shortly after its renewal time.
    const at = new Date(Date.now() + 50_000).toISOString();
    const r = ok(await meshca(['reconcile', '--at', at]), 'reconcile --at');
    assert.match(r.stdout, /cluster default: renewal was scheduled at .*; new intermediate serial/, r.stdout);
    await waitFor('certificates from the renewed intermediate', () => load.observed.intermediates.size > 1 || undefined, 20_000);
    // Keep going a little: every connection, new or old, now gets the new intermediate.
    await new Promise((res) => setTimeout(res, 1500));
    await load.stop();
    observed = load.observed;

    const inters = [...observed.intermediates.keys()];
    console.log(
      `${name}: ${observed.requests} requests, ${observed.failures.length} failed; ` +
        inters
          .map(
            (p, i) => `intermediate ${i + 1} serial ${parseCertificate(p).serialHex.slice(0, 12)}… signed ${observed.intermediates.get(p)}`,
          )
          .join(', '),
    );
    assert.deepEqual(observed.failures, [], 'no request failed');
    assert.equal(inters.length, 2, 'exactly the old and the renewed intermediate');
    assert.equal(inters[0], before);
    assert.notEqual(parseCertificate(inters[1]).serialHex, parseCertificate(inters[0]).serialHex, 'the served intermediate serial changed');
    // Both chains, before and after, verify to the (unchanged) root.
    const root = parseCertificates(rootPem);
    for (const chain of observed.chains.values()) {
      const v = verifyChain(parseCertificates(chain.slice(0, -1).join('')), { roots: root, now: new Date(), leafIsEndEntity: true });
      assert.ok(v.ok, v.problems.join('; '));
    }
    // Fresh connections (with workers: to every worker) all sign with the new intermediate.
    const fresh = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const c = IstioCaClient.tls(grpc, rootPem, { serverName: 'istiod.istio-system.svc' });
        try {
          return (await c.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr }, { token })).certChain[1];
        } finally {
          c.close();
        }
      }),
    );
    assert.deepEqual(new Set(fresh), new Set([inters[1]]));
    // The hierarchy gauge follows the renewed intermediate.
    const renewed = parseCertificate(inters[1]);
    const metrics = await (await fetch(`http://${http}/metrics`)).text();
    assert.equal(
      metric(metrics, 'meshca_ca_cert_expiry_timestamp_seconds{cluster="default"}'),
      Math.floor(renewed.notAfter.getTime() / 1000),
    );
    // Never restarted.
    assert.equal(serve.child.exitCode, null);
    assert.equal(serve.stdout().trim().split('\n').length, 1);
  } finally {
    await load.stop();
    assert.equal(await serve.stop(), 0, serve.stderr());
  }
}

describe('a renewed CA secret is picked up by meshca serve without restart and without a failed request', () => {
  it('single process', { timeout: 90_000 }, () => scenario('single', []));
  it('gRPC workers: the primary detects the change and tells each worker to reload', { timeout: 90_000 }, () =>
    scenario('workers', ['--workers', '2']),
  );
});
