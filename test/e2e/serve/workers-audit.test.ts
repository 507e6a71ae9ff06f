import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MESHCA_BIN, REPO_ROOT } from '../../helpers/run.js';
import { tempDir } from '../../helpers/tmp.js';
import { IstioCaClient } from './ca-client.js';
import { ID, getText, metric, spawnServe, workloadCsr } from './helpers.js';

/**
 * `serve --workers 2` on the embedded store: the workers relay their audit rows to the primary,
 * the one SQLite writer (src/server/audit-relay.ts). Every issuance and every refusal answered
 * before SIGTERM must be in the database afterwards, none twice.
 */
test('with --workers 2 every issued and refused request is audited exactly once across a clean SIGTERM', { timeout: 90_000 }, async () => {
  const tmp = tempDir('meshca-workers-audit-');
  try {
    const serve = spawnServe(['--dir', tmp.path, '--workers', '2', '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--rate-limit', '0', '--log-level', 'warn']);
    const { grpc, http } = await serve.ready;
    const token = spawnSync(process.execPath, [MESHCA_BIN, 'token', '--dir', tmp.path, '--namespace', 'shop', '--service-account', 'cart'], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(token.status, 0, token.stderr);
    const rootPem = readFileSync(join(tmp.path, 'root', 'root-cert.pem'), 'utf8');
    // Several connections: the primary hands each to the worker with the fewest open ones.
    const clients = Array.from({ length: 6 }, () => IstioCaClient.tls(grpc, rootPem, { serverName: 'localhost' }));
    const serials = new Set<string>();
    let refused = 0;
    await Promise.all(
      clients.map(async (c, i) => {
        for (let k = 0; k < 40; k++) {
          const { csr } = workloadCsr(ID('shop', 'cart'));
          if (k % 10 === 9) {
            // Another workload's identity with cart's token: PERMISSION_DENIED, audited as refused.
            await assert.rejects(c.createCertificate({ csr: workloadCsr(ID('shop', `other-${i}`)).csr }, { token: token.stdout.trim() }), (e: { code?: number }) => e.code === 7);
            refused++;
            continue;
          }
          const r = await c.createCertificate({ csr, ttlSeconds: 600 }, { token: token.stdout.trim() });
          serials.add(r.certChain[0]);
        }
      }),
    );
    // All six are still open: three per worker, whatever order the workers acknowledged in.
    assert.deepEqual(workerConnections(await getText(http, '/metrics')), [3, 3]);
    for (const c of clients) c.close();
    // The workers report each close back to the primary.
    for (let i = 0; i < 100 && workerConnections(await getText(http, '/metrics')).some((n) => n !== 0); i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(workerConnections(await getText(http, '/metrics')), [0, 0]);
    const issuedByMetrics = metric(await getText(http, '/metrics'), 'meshca_certificates_issued_total{method="local-token"}');
    assert.equal(serials.size, 6 * 36);
    assert.equal(issuedByMetrics, serials.size);
    assert.equal(await serve.stop(), 0, serve.stderr());
    const count = spawnSync(
      process.execPath,
      ['-e', `const D=require('better-sqlite3');const d=new D(process.argv[1],{readonly:true});console.log(JSON.stringify(d.prepare("select outcome, count(*) n, count(distinct coalesce(serial, id)) d from audit group by outcome order by outcome").all()))`, join(tmp.path, 'meshca.db')],
      { cwd: REPO_ROOT, encoding: 'utf8' },
    );
    assert.equal(count.status, 0, count.stderr);
    assert.deepEqual(JSON.parse(count.stdout), [
      { outcome: 'issued', n: serials.size, d: serials.size },
      { outcome: 'refused', n: refused, d: refused },
    ]);
  } finally {
    tmp.cleanup();
  }
});

test('with --workers 2 on node:http2 the primary hands connections over too; grpc-js workers share the port without a balancer', { timeout: 90_000 }, async () => {
  for (const transport of ['node-http2', 'grpc-js'] as const) {
    const tmp = tempDir('meshca-workers-transport-');
    try {
      const serve = spawnServe(['--dir', tmp.path, '--workers', '2', '--grpc-transport', transport, '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0', '--rate-limit', '0', '--log-level', 'warn']);
      const { grpc, http } = await serve.ready;
      const token = spawnSync(process.execPath, [MESHCA_BIN, 'token', '--dir', tmp.path, '--namespace', 'shop', '--service-account', 'cart'], { cwd: REPO_ROOT, encoding: 'utf8' });
      assert.equal(token.status, 0, token.stderr);
      const rootPem = readFileSync(join(tmp.path, 'root', 'root-cert.pem'), 'utf8');
      const clients = Array.from({ length: 4 }, () => IstioCaClient.tls(grpc, rootPem, { serverName: 'localhost' }));
      const answers = await Promise.all(clients.map((c) => c.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr, ttlSeconds: 600 }, { token: token.stdout.trim() })));
      assert.equal(new Set(answers.map((a) => a.certChain[0])).size, 4, transport);
      const text = await getText(http, '/metrics');
      if (transport === 'grpc-js') assert.deepEqual(workerConnections(text), [], 'no balancer with grpc-js');
      else assert.deepEqual(workerConnections(text), [2, 2], transport);
      for (const c of clients) c.close();
      assert.equal(await serve.stop(), 0, serve.stderr());
    } finally {
      tmp.cleanup();
    }
  }
});

/** meshca_grpc_worker_connections of each worker, in worker order. */
function workerConnections(metrics: string): number[] {
  return [...metrics.matchAll(/^meshca_grpc_worker_connections\{worker="(\d+)"\} (\d+)$/gm)].sort((a, b) => Number(a[1]) - Number(b[1])).map((m) => Number(m[2]));
}
