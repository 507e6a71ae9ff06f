import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MESHCA_BIN, REPO_ROOT } from '../../helpers/run.js';
import { tempDir } from '../../helpers/tmp.js';
import { IstioCaClient } from './ca-client.js';
import { ID, SERVE_WITH_SWITCHES, getText, metric, spawnServe, workloadCsr } from './helpers.js';

/**
 * `serve --workers 2` on the embedded store: the workers relay their audit rows to the primary,
 * the one SQLite writer (src/server/audit-relay.ts). Every issuance and every refusal answered
 * before SIGTERM must be in the database afterwards, none twice.
 */
test('with --workers 2 every issued and refused request is audited exactly once across a clean SIGTERM', { timeout: 90_000 }, async () => {
  const tmp = tempDir('meshca-workers-audit-');
  try {
    const { serve, grpc, http, token, rootPem } = await startWorkers(tmp.path, []);
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
            await assert.rejects(
              c.createCertificate({ csr: workloadCsr(ID('shop', `other-${i}`)).csr }, { token: token }),
              (e: { code?: number }) => e.code === 7,
            );
            refused++;
            continue;
          }
          const r = await c.createCertificate({ csr, ttlSeconds: 600 }, { token: token });
          serials.add(r.certChain[0]);
        }
      }),
    );
    // All six are still open: three per worker, whatever order the workers acknowledged in.
    assert.deepEqual(workerConnections(await getText(http, '/metrics')), [3, 3]);
    for (const c of clients) c.close();
    // The workers report each close back to the primary.
    for (let i = 0; i < 100 && workerConnections(await getText(http, '/metrics')).some((n) => n !== 0); i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(workerConnections(await getText(http, '/metrics')), [0, 0]);
    const issuedByMetrics = metric(await getText(http, '/metrics'), 'meshca_certificates_issued_total{method="local-token"}');
    assert.equal(serials.size, 6 * 36);
    assert.equal(issuedByMetrics, serials.size);
    assert.equal(await serve.stop(), 0, serve.stderr());
    assert.deepEqual(
      stateQuery(
        tmp.path,
        'select outcome, count(*) n, count(distinct coalesce(serial, id)) d from audit group by outcome order by outcome',
      ),
      [
        { outcome: 'issued', n: serials.size, d: serials.size },
        { outcome: 'refused', n: refused, d: refused },
      ],
    );
  } finally {
    tmp.cleanup();
  }
});

test('with --workers 2 on node:http2 the primary hands connections over too', { timeout: 90_000 }, async () => {
  for (const transport of ['node-http2'] as const) {
    const tmp = tempDir('meshca-workers-transport-');
    try {
      const { serve, grpc, http, token, rootPem } = await startWorkers(tmp.path, ['--grpc-transport', transport]);
      const clients = Array.from({ length: 4 }, () => IstioCaClient.tls(grpc, rootPem, { serverName: 'localhost' }));
      const answers = await Promise.all(
        clients.map((c) => c.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr, ttlSeconds: 600 }, { token: token })),
      );
      assert.equal(new Set(answers.map((a) => a.certChain[0])).size, 4, transport);
      const text = await getText(http, '/metrics');
      assert.deepEqual(workerConnections(text), [2, 2], transport);
      for (const c of clients) c.close();
      assert.equal(await serve.stop(), 0, serve.stderr());
    } finally {
      tmp.cleanup();
    }
  }
});

test('a killed worker is replaced, and new connections go to the survivor and the replacement', { timeout: 90_000 }, async () => {
  const tmp = tempDir('meshca-workers-kill-');
  try {
    const { serve, grpc, http, token, rootPem } = await startWorkers(tmp.path, []);
    const call = (c: IstioCaClient) => c.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr, ttlSeconds: 600 }, { token: token });
    const first = Array.from({ length: 4 }, () => IstioCaClient.tls(grpc, rootPem, { serverName: 'localhost' }));
    await Promise.all(first.map(call));
    assert.deepEqual(workerConnections(await getText(http, '/metrics')), [2, 2]);
    const pid = serve.child.pid!;
    const workers = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
    assert.equal(workers.length, 2, 'two worker processes');
    process.kill(workers[0], 'SIGKILL');
    // The primary forgets the dead worker and starts a replacement, which starts empty.
    let counts: number[] = [];
    for (let i = 0; i < 200; i++) {
      // A scrape that races the death may wait out prom-client's 5 s and fail; the primary must not.
      counts = workerConnections(
        await getText(http, '/metrics').catch((e: Error) =>
          assert.fail(`primary unreachable after the kill (${e.message}): ${serve.stderr()}`),
        ),
      );
      if (counts.length === 2 && counts.includes(0)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual(counts.slice().sort(), [0, 2], `after the kill: ${JSON.stringify(counts)}`);
    // Four new connections: the replacement takes two to catch up, then they alternate: 3 and 3.
    const second = Array.from({ length: 4 }, () => IstioCaClient.tls(grpc, rootPem, { serverName: 'localhost' }));
    const answers = await Promise.all(second.map(call));
    assert.equal(answers.length, 4);
    assert.deepEqual(workerConnections(await getText(http, '/metrics')), [3, 3]);
    for (const c of [...first, ...second]) c.close();
    assert.equal(await serve.stop(), 0, serve.stderr());
  } finally {
    tmp.cleanup();
  }
});

/**
 * MESHCA_AUDIT=off exists so that the benchmark can measure what the audit costs; only its serve
 * entry (bench/serve.ts) reads it. It must reach the workers (they inherit the environment), say
 * so loudly, and nothing may be written; any other value is refused before a file is opened.
 */
test(
  'MESHCA_AUDIT=off: --workers 2 issue without writing audit rows, warn, and /v1/ca says so; a bad value is refused',
  { timeout: 90_000 },
  async () => {
    const tmp = tempDir('meshca-audit-off-');
    try {
      const { serve, grpc, http, token, rootPem } = await startWorkers(tmp.path, [], { MESHCA_AUDIT: 'off' }, SERVE_WITH_SWITCHES);
      const clients = Array.from({ length: 4 }, () => IstioCaClient.tls(grpc, rootPem, { serverName: 'localhost' }));
      const answers = await Promise.all(
        clients.map((c) => c.createCertificate({ csr: workloadCsr(ID('shop', 'cart')).csr, ttlSeconds: 600 }, { token: token })),
      );
      assert.equal(new Set(answers.map((a) => a.certChain[0])).size, 4);
      // Both workers served (two connections each), so both ran with the setting.
      assert.deepEqual(workerConnections(await getText(http, '/metrics')), [2, 2]);
      assert.equal(metric(await getText(http, '/metrics'), 'meshca_certificates_issued_total{method="local-token"}'), 4);
      const ca = (await (await fetch(`http://${http}/v1/ca`)).json()) as { audit: string };
      assert.equal(ca.audit, 'off (MESHCA_AUDIT=off)');
      const listed = (await (await fetch(`http://${http}/v1/certificates`)).json()) as { certificates: unknown[] };
      assert.deepEqual(listed.certificates, []);
      for (const c of clients) c.close();
      assert.equal(await serve.stop(), 0, serve.stderr());
      // The primary and each worker warn once.
      assert.equal(serve.stderr().match(/issuances are NOT audited/g)?.length, 3, serve.stderr());
      assert.deepEqual(stateQuery(tmp.path, 'select count(*) n from audit'), [{ n: 0 }]);
    } finally {
      tmp.cleanup();
    }
    const bad = tempDir('meshca-audit-bad-');
    try {
      const serve = spawnServe(
        ['--dir', join(bad.path, 'state'), '--grpc-addr', '127.0.0.1:0', '--http-addr', '127.0.0.1:0'],
        { MESHCA_AUDIT: 'no' },
        SERVE_WITH_SWITCHES,
      );
      await assert.rejects(serve.ready);
      assert.notEqual(await serve.exited, 0);
      assert.match(serve.stderr(), /MESHCA_AUDIT must be "on" or "off", got "no"/);
      assert.equal(existsSync(join(bad.path, 'state', 'meshca.db')), false, 'no database was created');
    } finally {
      bad.cleanup();
    }
  },
);

/** `serve --workers 2` on a fresh state directory, its addresses, a local token for shop/cart and the root. */
async function startWorkers(dir: string, extra: string[], env: Record<string, string> = {}, entry?: string) {
  const serve = spawnServe(
    [
      '--dir',
      dir,
      '--workers',
      '2',
      ...extra,
      '--grpc-addr',
      '127.0.0.1:0',
      '--http-addr',
      '127.0.0.1:0',
      '--rate-limit',
      '0',
      '--log-level',
      'warn',
    ],
    env,
    entry,
  );
  const { grpc, http } = await serve.ready;
  const token = spawnSync(process.execPath, [MESHCA_BIN, 'token', '--dir', dir, '--namespace', 'shop', '--service-account', 'cart'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  });
  assert.equal(token.status, 0, token.stderr);
  return { serve, grpc, http, token: token.stdout.trim(), rootPem: readFileSync(join(dir, 'root', 'root-cert.pem'), 'utf8') };
}

/** The rows of a query on the state directory's database, read by a separate process once serve has exited. */
function stateQuery(dir: string, sql: string): unknown[] {
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `const D=require('better-sqlite3');const d=new D(process.argv[1],{readonly:true});console.log(JSON.stringify(d.prepare(process.argv[2]).all()))`,
      join(dir, 'meshca.db'),
      sql,
    ],
    { cwd: REPO_ROOT, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as unknown[];
}

/** meshca_grpc_worker_connections of each worker, in worker order. */
function workerConnections(metrics: string): number[] {
  return [...metrics.matchAll(/^meshca_grpc_worker_connections\{worker="(\d+)"\} (\d+)$/gm)]
    .sort((a, b) => Number(a[1]) - Number(b[1]))
    .map((m) => Number(m[2]));
}
