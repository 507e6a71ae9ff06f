/**
 * CPU cost per certificate, for profiling work (npm run bench gives the headline figures):
 * starts `meshca serve`, drives it with the load generator for a while, and reports the CPU time
 * of the server's processes and of the load generator per certificate, read from /proc, which is
 * steadier than throughput on a shared machine.
 *
 *   node dist/bench/cpu.js [ec-p256|rsa-2048] [seconds=6] [concurrency=64]
 *   env: WORKERS=1 (one process; 2 = primary + 2 gRPC workers), RATE=N (open loop at N/s),
 *        WARMUP=ms (default 1500), SERVE_ARGS="--grpc-transport node-http2" (extra serve flags),
 *        NODE_FLAGS="--perf-basic-prof" (extra node flags for the server),
 *        SERVER_LOG=file (the server's other stdout lines, e.g. with NODE_FLAGS=--trace-gc),
 *        ELD=1 (each serving process's event-loop delay over the measured window: lib/eld-probe.ts),
 *        PREWARM=ms (with RATE: a closed loop at the given concurrency first, so that the open loop
 *        meets code V8 has already optimized, as the open loops of `npm run bench` do; at a
 *        moderate rate V8 is still optimizing the hot path long after the first request)
 *
 * Prints one JSON line: rate, p50/p99 (ms), failed, serverUsPerCert, loadgenUsPerCert, the
 * cores each side used, and serverSleepsPerCert (voluntary context switches of the serving
 * processes' main threads per certificate). With RATE, the server's event-loop lag (from /metrics) is printed too.
 */
import { spawn } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createInterface } from 'node:readline';
import { LocalTokenIssuer } from '../src/auth/index.js';
import { createCsr } from '../src/pki/csr.js';
import { generateKeyPair } from '../src/pki/keys.js';
import { SERVE_NODE_FLAGS } from '../src/server/cluster.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { cpuMs, processTree, sleeps, totalCpuMs } from './lib/proc.js';
import { requestFrame } from './lib/wire.js';
import type { LoadSpec } from './loadgen.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const [alg = 'ec-p256', secs = '6', conc = '64'] = process.argv.slice(2);
if (alg !== 'ec-p256' && alg !== 'rsa-2048') throw new Error(`unknown algorithm ${alg}: ec-p256 or rsa-2048`);
const workers = process.env.WORKERS ?? '1';
const warmup = Number(process.env.WARMUP ?? 1500);

/** The load generator on `spec`, its report on stdout ('pipe') or discarded. */
function loadgen(spec: LoadSpec, stdout: 'pipe' | 'ignore') {
  return spawn(process.execPath, [join(ROOT, 'dist/bench/loadgen.js'), JSON.stringify(spec)], { stdio: ['ignore', stdout, 'inherit'] });
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-cpu-'));
  const nodeFlags = [...SERVE_NODE_FLAGS, ...(process.env.NODE_FLAGS ?? '').split(' ').filter(Boolean)];
  const eldDir = process.env.ELD ? mkdtempSync(join(tmpdir(), 'meshca-eld-')) : undefined;
  if (eldDir) nodeFlags.push(`--import=${pathToFileURL(join(ROOT, 'dist/bench/lib/eld-probe.js')).href}`);
  const serveArgs = (process.env.SERVE_ARGS ?? '').split(' ').filter(Boolean);
  // The benchmark's serve entry (bench/serve.ts) honours MESHCA_AUDIT=off from the environment.
  const server = spawn(
    process.execPath,
    [
      ...nodeFlags,
      join(ROOT, 'dist/bench/serve.js'),
      'serve',
      '--dir',
      dir,
      '--grpc-addr',
      '127.0.0.1:0',
      '--http-addr',
      '127.0.0.1:0',
      '--key-algorithm',
      alg,
      '--rate-limit',
      '0',
      '--log-level',
      'warn',
      '--workers',
      workers,
      ...serveArgs,
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: eldDir ? { ...process.env, MESHCA_BENCH_ELD_DIR: eldDir } : process.env,
    },
  );
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: server.stdout! });
    const log = process.env.SERVER_LOG ? createWriteStream(process.env.SERVER_LOG) : undefined;
    rl.on('line', (l) => (l.startsWith('{') ? resolve(l) : log?.write(`${l}\n`)));
    server.once('exit', (c) => reject(new Error(`meshca serve exited with ${c}`)));
  });
  const addr = JSON.parse(line) as { grpc: string; http: string };
  const rsaCache = join(ROOT, 'bench/.cache/rsa-2048-x1000.pem');
  const keys =
    alg === 'ec-p256'
      ? Array.from({ length: 1000 }, () => generateKeyPair('ec-p256').privateKey)
      : existsSync(rsaCache)
        ? readFileSync(rsaCache, 'utf8')
            .split(/(?=-----BEGIN PRIVATE KEY-----)/)
            .map((k) => createPrivateKey(k))
        : Array.from({ length: 200 }, () => generateKeyPair('rsa-2048').privateKey);
  const store = openSqliteStore(dir);
  const issuer = await LocalTokenIssuer.open(store, {});
  const pool: { frame: string; token: string }[] = [];
  for (let i = 0; i < 1000; i++) {
    const sa = `w-${i}`;
    const csr = createCsr({ key: keys[i % keys.length], sans: { uris: [`spiffe://cluster.local/ns/bench/sa/${sa}`] } });
    pool.push({
      frame: requestFrame(csr.pem, 3600).toString('base64'),
      token: await issuer.issue({ namespace: 'bench', serviceAccount: sa, ttlSeconds: 7200, audience: ['istio-ca'] }),
    });
  }
  await store.close();
  writeFileSync(join(dir, 'pool.json'), JSON.stringify(pool));
  const spec: LoadSpec = {
    mode: 'grpc',
    target: addr.grpc,
    rootPem: readFileSync(join(dir, 'root', 'root-cert.pem'), 'utf8'),
    servername: 'localhost',
    pool: join(dir, 'pool.json'),
    connections: Math.min(Number(conc), 8),
    concurrency: Number(conc),
    durationMs: Number(secs) * 1000,
    warmupMs: warmup,
  };
  if (process.env.RATE) {
    if (process.env.PREWARM) {
      const warm = loadgen({ ...spec, durationMs: Number(process.env.PREWARM), warmupMs: 0 }, 'ignore');
      await new Promise((r) => warm.once('exit', r));
    }
    spec.rate = Number(process.env.RATE);
    spec.concurrency = 0;
  }
  const lg = loadgen(spec, 'pipe');
  let out = '';
  lg.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  // The primary (or the one process), then its workers.
  const serverPids = () => processTree(server.pid!);
  const serverCpu = () => totalCpuMs(serverPids());
  await new Promise((r) => setTimeout(r, warmup));
  const perProcess = () => new Map(serverPids().map((p) => [p, cpuMs(p)]));
  // The probes start their window now (eld-probe.ts).
  if (eldDir) for (const p of serverPids()) process.kill(p, 'SIGUSR2');
  const serverSleeps = () => serverPids().reduce((a, p) => a + sleeps(p), 0);
  const w0 = serverSleeps();
  const s0 = serverCpu();
  const p0 = perProcess();
  const g0 = cpuMs(lg.pid!);
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, Number(secs) * 1000));
  const s1 = serverCpu();
  const w1 = serverSleeps();
  const p1 = perProcess();
  const g1 = cpuMs(lg.pid!);
  const t1 = Date.now();
  await new Promise((r) => lg.once('exit', r));
  const res = JSON.parse(out.trim().split('\n').pop()!) as { rate: number; p50: number; p99: number; failed: number };
  const certs = (res.rate * (t1 - t0)) / 1000;
  const report: Record<string, unknown> = {
    alg,
    workers,
    concurrency: spec.rate ? `open loop ${spec.rate}/s` : conc,
    rate: Math.round(res.rate),
    p50: +res.p50.toFixed(2),
    p99: +res.p99.toFixed(2),
    failed: res.failed,
    serverUsPerCert: Math.round(((s1 - s0) * 1000) / certs),
    loadgenUsPerCert: Math.round(((g1 - g0) * 1000) / certs),
    // How often the serving event loops found nothing to do and slept: about one per certificate
    // means every request is handled alone, with nothing batched, and on a VM every wake-up costs
    // CPU of its own (bench/wake.ts measures how much).
    serverSleepsPerCert: +((w1 - w0) / certs).toFixed(2),
    serverCores: +((s1 - s0) / (t1 - t0)).toFixed(2),
    loadgenCores: +((g1 - g0) / (t1 - t0)).toFixed(2),
    // The primary first, then each worker: an uneven split between workers shows here.
    processCores: [...p1].map(([pid, ms]) => +((ms - (p0.get(pid) ?? 0)) / (t1 - t0)).toFixed(2)),
  };
  if (spec.rate) {
    const metrics = await (await fetch(`http://${addr.http}/metrics`)).text();
    for (const l of metrics.split('\n')) {
      const m = /^nodejs_eventloop_lag_(p99|max)_seconds (\S+)/.exec(l);
      if (m) report[`httpProcessLag${m[1]}Ms`] = +(Number(m[2]) * 1000).toFixed(1);
    }
  }
  console.log(JSON.stringify(report));
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  if (eldDir) {
    // The primary first, then the workers (by pid, the order they were started in).
    const probes = readdirSync(eldDir).map((f) => JSON.parse(readFileSync(join(eldDir, f), 'utf8')) as { pid: number });
    probes.sort((a, b) => (a.pid === server.pid ? -1 : b.pid === server.pid ? 1 : a.pid - b.pid));
    console.log(JSON.stringify({ eventLoopDelayMs: probes }));
    rmSync(eldDir, { recursive: true, force: true });
  }
  rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
