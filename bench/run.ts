/**
 * `npm run bench`: end-to-end issuance throughput of `meshca serve` over gRPC with TLS, against the
 * cryptographic limit from `openssl speed` and against cfssl when it is installed. Prints a table
 * and writes bench/results/latest.json. Every request is a distinct CSR from a pool of at least
 * 1,000 keys, tokens are verified as in production, every issuance is audited, and a sample of
 * issued chains is checked with openssl after each run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { LocalTokenIssuer } from '../src/auth/index.js';
import { createCsr } from '../src/pki/csr.js';
import { generateKeyPair, generateKeyPairAsync } from '../src/pki/keys.js';
import { SERVE_NODE_FLAGS } from '../src/server/cluster.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { issuanceLimit, opensslAlgSpeed, opensslSpeed, type SpeedFigures } from './lib/openssl-speed.js';
import { cpuMs, processTree, totalCpuMs, treeMemory, treeSockets } from './lib/proc.js';
import { requestFrame } from './lib/wire.js';
import { pairedLoss, relativeLoss, summarize, type LossEstimate } from './lib/stats.js';
import type { LoadSpec } from './loadgen.js';

const ROOT = new URL('../../', import.meta.url).pathname;
// `meshca serve` through the entry that reads MESHCA_AUDIT (bench/serve.ts); production serve does not.
const MESHCA = join(ROOT, 'dist/bench/serve.js');
const LOADGEN = join(ROOT, 'dist/bench/loadgen.js');
const CACHE = join(ROOT, 'bench/.cache');
const args = new Set(process.argv.slice(2));
const QUICK = args.has('--quick');
const DURATION = QUICK ? 2000 : 5000;
const WARMUP = QUICK ? 500 : 1500;
/**
 * A closed loop at c=64 before the measured levels. V8 optimizes a function once it has run enough,
 * so a fresh server keeps compiling hot-path functions long after its first request. A CA runs for
 * days: the levels measure the steady state, not that start-up.
 */
const SERVER_WARMUP = QUICK ? 3000 : 20000;
const WARMUP_CONCURRENCY = 64;
/**
 * Warm-up after each restart of the audit-cost runs (a fresh process, so a cold JIT); with a short
 * one they compared two start-ups, not the steady state the audit costs in.
 */
const AUDIT_WARMUP = QUICK ? 1000 : 15000;
/** Each audit-cost run's measured window: twice a level's, since the A/B compares means of 4 runs. */
const AUDIT_DURATION = QUICK ? DURATION : 2 * DURATION;
/** How long the memory test waits, connections held, before its second reading. */
const SETTLE_MS = Number(process.env.SETTLE_MS ?? (QUICK ? 3000 : 5000));
const POOL = 1000;
const LEVELS = QUICK ? [16, 64] : [1, 16, 64, 256];
const WORKERS = Number(process.env.MESHCA_BENCH_WORKERS ?? availableParallelism());

type Alg = 'ec-p256' | 'rsa-2048';

interface Server {
  proc: ChildProcess;
  grpc: string;
  http: string;
  dir: string;
  rootPem: string;
}

async function startMeshca(alg: Alg, extra: string[] = [], o: { dir?: string; env?: Record<string, string> } = {}): Promise<Server> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), `meshca-bench-${alg}-`));
  // Started as `npm start` and the container image start it (2 MB young generation, one V8 platform
  // thread); NODE_FLAGS adds node flags for experiments (the figures of record use none).
  const nodeFlags = [...SERVE_NODE_FLAGS, ...(process.env.NODE_FLAGS ?? '').split(' ').filter(Boolean)];
  const proc = spawn(
    process.execPath,
    [
      ...nodeFlags,
      MESHCA,
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
      String(WORKERS),
      ...extra,
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...o.env },
    },
  );
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! });
    rl.once('line', resolve);
    proc.once('exit', (c) => reject(new Error(`meshca serve exited with ${c}`)));
  });
  const l = JSON.parse(line) as { grpc: string; http: string };
  const rootPem = readFileSync(join(dir, 'root', 'root-cert.pem'), 'utf8');
  return { proc, grpc: l.grpc, http: l.http, dir, rootPem };
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await done;
}

/** A pool of distinct keys; RSA keys are slow to make, so they are cached between runs. */
async function keyPool(alg: Alg, n: number): Promise<KeyObject[]> {
  if (alg === 'ec-p256') return Array.from({ length: n }, () => generateKeyPair('ec-p256').privateKey);
  const file = join(CACHE, `rsa-2048-x${n}.pem`);
  if (existsSync(file)) {
    return readFileSync(file, 'utf8')
      .split(/(?=-----BEGIN PRIVATE KEY-----)/)
      .slice(0, n)
      .map((k) => createPrivateKey(k));
  }
  const keys: KeyObject[] = [];
  for (let i = 0; i < n; i += 16) {
    const batch = await Promise.all(Array.from({ length: Math.min(16, n - i) }, () => generateKeyPairAsync('rsa-2048')));
    keys.push(...batch.map((k) => k.privateKey));
  }
  mkdirSync(CACHE, { recursive: true });
  writeFileSync(file, keys.map((k) => k.export({ format: 'pem', type: 'pkcs8' }) as string).join(''), { mode: 0o600 });
  return keys;
}

interface Workload {
  csrPem: string;
  token: string;
}

async function workloads(dir: string, keys: KeyObject[], n: number, prefix: string): Promise<Workload[]> {
  const store = openSqliteStore(dir);
  try {
    const issuer = await LocalTokenIssuer.open(store, {});
    const out: Workload[] = [];
    for (let i = 0; i < n; i++) {
      const sa = `${prefix}-${i}`;
      const csr = createCsr({ key: keys[i % keys.length], sans: { uris: [`spiffe://cluster.local/ns/bench/sa/${sa}`] } });
      out.push({
        csrPem: csr.pem,
        token: await issuer.issue({ namespace: 'bench', serviceAccount: sa, ttlSeconds: 7200, audience: ['istio-ca'] }),
      });
    }
    return out;
  } finally {
    await store.close();
  }
}

function writePool(file: string, w: Workload[]): void {
  writeFileSync(file, JSON.stringify(w.map((x) => ({ frame: requestFrame(x.csrPem, 3600).toString('base64'), token: x.token }))));
}

interface LoadResult {
  ok: number;
  failed: number;
  retried: number;
  errors: Record<string, number>;
  elapsedMs: number;
  rate: number;
  p50: number;
  p99: number;
  max: number;
  samples: string[][];
}

interface LoadHooks {
  /** Called once the load generator has spawned (the audit-cost runs start their CPU window from it). */
  onSpawn?: (child: ChildProcess) => void;
  /** Called when the load generator reports that its connections are open; it closes them once this resolves. */
  onRunning?: (child: ChildProcess) => Promise<void>;
}

function runLoad(spec: LoadSpec, hooks: LoadHooks = {}): Promise<LoadResult> {
  let onRunning = hooks.onRunning;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LOADGEN, JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'inherit'] });
    hooks.onSpawn?.(child);
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (onRunning && out.includes('\n')) {
        const first = out;
        const measure = onRunning;
        onRunning = undefined;
        // Measure while the connections are still open, then let the load generator close them.
        measure(child).then(() => {
          child.stdin!.write('go\n');
          resolve(JSON.parse(first) as LoadResult);
        }, reject);
      }
    });
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`loadgen exited with ${code}`));
      if (out && !out.includes('elapsedMs')) return;
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as LoadResult);
      } catch (e) {
        reject(e);
      }
    });
  });
}

/** Checks sample chains with the openssl CLI: leaf against intermediate and root. */
function opensslCheck(samples: string[][], rootPem: string): { checked: number; failed: number } {
  const d = mkdtempSync(join(tmpdir(), 'meshca-bench-verify-'));
  writeFileSync(join(d, 'root.pem'), rootPem);
  let failed = 0;
  for (const [i, chain] of samples.entries()) {
    writeFileSync(join(d, `leaf${i}.pem`), chain[0]);
    writeFileSync(join(d, `chain${i}.pem`), chain.slice(1).join(''));
    const r = spawnSync(
      'openssl',
      ['verify', '-CAfile', join(d, 'root.pem'), '-untrusted', join(d, `chain${i}.pem`), join(d, `leaf${i}.pem`)],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) failed++;
  }
  rmSync(d, { recursive: true, force: true });
  return { checked: samples.length, failed };
}

async function metric(http: string, name: string): Promise<number> {
  const text = await (await fetch(`http://${http}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && !line.startsWith('#')) sum += Number(line.split(' ').pop());
  return sum;
}

function auditRows(dir: string): number {
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `const D=require('better-sqlite3');const d=new D(process.argv[1],{readonly:true});console.log(d.prepare("select count(*) n from audit where outcome='issued'").get().n)`,
      join(dir, 'meshca.db'),
    ],
    { encoding: 'utf8', cwd: ROOT },
  );
  return Number(r.stdout.trim());
}

/** A serve on a fresh state directory, a pool of POOL distinct workloads written for the load generator, and the load spec on it. */
async function setUp(alg: Alg): Promise<{ server: Server; pool: Workload[]; base: LoadSpec }> {
  const keys = await keyPool(alg, POOL);
  const server = await startMeshca(alg);
  const pool = await workloads(server.dir, keys, POOL, 'w');
  const poolFile = join(server.dir, 'pool.json');
  writePool(poolFile, pool);
  const base: LoadSpec = {
    mode: 'grpc',
    target: server.grpc,
    rootPem: server.rootPem,
    servername: 'localhost',
    pool: poolFile,
    connections: 4,
    concurrency: 16,
    durationMs: DURATION,
    warmupMs: WARMUP,
    sample: 20,
  };
  return { server, pool, base };
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

/**
 * The scenario's limit comes from `openssl speed` run just before its closed loops and again just
 * after them (the server idle both times), averaged: the machine's speed drifts within minutes, and
 * a limit read once at the start of a long benchmark moved a scenario's percentage by as much.
 */
async function scenario(alg: Alg, startSpeed: SpeedFigures, results: Record<string, unknown>) {
  const kind = alg === 'ec-p256' ? 'ec' : 'rsa';
  const atStart =
    kind === 'ec' ? { sign: startSpeed.ecSign, verify: startSpeed.ecVerify } : { sign: startSpeed.rsaSign, verify: startSpeed.rsaVerify };
  console.log(
    `\n== ${alg}: CA key ${alg}, CSR keys ${alg}; limit ${fmt(issuanceLimit(atStart.sign, atStart.verify) * WORKERS)}/s for ${WORKERS} cores at the benchmark's start`,
  );
  const { server, pool, base } = await setUp(alg);
  const rows: Record<string, unknown>[] = [];
  let peak = 0;
  let best = 0;
  let bestLevel = LEVELS[0];
  const warm = await warmUp('meshca ', { ...base, connections: 8 });
  const speedBefore = opensslAlgSpeed(kind, QUICK ? 1 : 3);
  const done: { c: number; r: LoadResult; check: { checked: number; failed: number } }[] = [];
  for (const c of LEVELS) {
    const r = await runLoad({ ...base, concurrency: c, connections: Math.min(c, 8) });
    const check = opensslCheck(r.samples, server.rootPem);
    const mem = treeMemory(server.proc.pid!);
    peak = Math.max(peak, mem.peak);
    if (r.rate > best) {
      best = r.rate;
      bestLevel = c;
    }
    rows.push({
      concurrency: c,
      rate: r.rate,
      p50: r.p50,
      p99: r.p99,
      failed: r.failed,
      errors: r.errors,
      opensslChecked: check.checked,
      opensslFailed: check.failed,
    });
    done.push({ c, r, check });
  }
  const speedAfter = opensslAlgSpeed(kind, QUICK ? 1 : 3);
  const sign = (speedBefore.sign + speedAfter.sign) / 2;
  const verify = (speedBefore.verify + speedAfter.verify) / 2;
  const limitCore = issuanceLimit(sign, verify);
  const limit = limitCore * WORKERS;
  console.log(
    `openssl speed just before and after the closed loops: sign ${fmt(speedBefore.sign)} / ${fmt(speedAfter.sign)}/s, verify ${fmt(speedBefore.verify)} / ${fmt(speedAfter.verify)}/s; limit ${fmt(limitCore)}/s per core, ${fmt(limit)}/s for ${WORKERS} cores`,
  );
  for (const { c, r, check } of done) {
    console.log(
      `meshca  c=${String(c).padStart(3)}  ${fmt(r.rate).padStart(7)} certs/s  p50 ${fmt(r.p50, 2)} ms  p99 ${fmt(r.p99, 2)} ms  failed ${r.failed}  ${fmt((100 * r.rate) / limit, 1)}% of limit  openssl ${check.checked - check.failed}/${check.checked} ok`,
    );
  }
  // Latency at half of the peak: an open loop at half the best rate, so queueing shows in p99. The
  // rate ramps up over a longer warm-up first (loadgen.ts), so that p99 is the steady state's.
  const half = await runLoad({ ...base, connections: 8, concurrency: 0, rate: Math.round(best / 2), warmupMs: 2 * WARMUP });
  console.log(
    `meshca  open loop at ${fmt(best / 2)}/s (half of peak): ${fmt(half.rate)} certs/s  p50 ${fmt(half.p50, 2)} ms  p99 ${fmt(half.p99, 2)} ms  failed ${half.failed}`,
  );
  // And at a quarter: where the tail stands when the machine is not near saturation (in the open
  // loop every request is handled alone, so each costs more CPU than in the closed loop's batches).
  const quarter = await runLoad({ ...base, connections: 8, concurrency: 0, rate: Math.round(best / 4), warmupMs: 2 * WARMUP });
  console.log(
    `meshca  open loop at ${fmt(best / 4)}/s (quarter of peak): ${fmt(quarter.rate)} certs/s  p50 ${fmt(quarter.p50, 2)} ms  p99 ${fmt(quarter.p99, 2)} ms  failed ${quarter.failed}`,
  );
  const issuedBefore = await metric(server.http, 'meshca_certificates_issued_total');
  await stop(server.proc);
  const audited = auditRows(server.dir);
  console.log(
    `audit: ${audited} rows for ${issuedBefore} certificates counted by /metrics before SIGTERM (lost: ${issuedBefore - audited})`,
  );

  const auditCostResult = await auditCost(alg, server.dir, base, bestLevel);
  const auditCostPaired = await pairedAuditCost(alg, server.dir, base, bestLevel);

  let cfssl: Record<string, unknown> | undefined;
  if (spawnSync('which', ['cfssl']).status === 0) cfssl = await cfsslScenario(alg, server.dir, pool, base);
  results[alg] = {
    limitPerCore: limitCore,
    limit,
    speedBefore,
    speedAfter,
    workers: WORKERS,
    serverWarmup: { ms: SERVER_WARMUP, concurrency: WARMUP_CONCURRENCY, rate: warm.rate, failed: warm.failed },
    best,
    halfPeak: { rate: half.rate, p50: half.p50, p99: half.p99, failed: half.failed },
    quarterPeak: { rate: quarter.rate, p50: quarter.p50, p99: quarter.p99, failed: quarter.failed },
    percentOfLimit: (100 * best) / limit,
    peakRss: peak,
    rows,
    auditCost: auditCostResult,
    auditCostPaired,
    audit: { issuedByMetrics: issuedBefore, auditRows: audited },
    cfssl,
    ratioVsCfssl: cfssl ? best / (cfssl.best as number) : undefined,
  };
  console.log(
    `peak RSS ${fmt(peak / 1048576, 1)} MB; best ${fmt(best)} certs/s = ${fmt((100 * best) / limit, 1)}% of the ${WORKERS}-core limit${cfssl ? `; ${fmt(best / (cfssl.best as number), 2)}x cfssl` : ''}`,
  );
  rmSync(server.dir, { recursive: true, force: true });
}

/**
 * What the audit costs in throughput: the best concurrency again on the same state directory, restarting
 * `serve` with the audit on and off (MESHCA_AUDIT=off) in the order on, off, off, on, twice, so
 * that a steady drift of the machine's speed over the runs cancels out. Each start gets AUDIT_WARMUP
 * before it is measured, since the JIT starts cold again.
 *
 * Throughput varies from one run to the next, so even the mean of four runs each way is uncertain.
 * Each run also reads the CPU time that the
 * server's processes and the load generator spent per certificate (from /proc, over the measured
 * window). With the machine saturated by the two, throughput is the cores divided by their CPU per
 * certificate, so 1 - (off / on) of that total is the same loss measured another way; it varies
 * just as much from run to run (a fresh process each time), but it shows where the CPU went: the
 * server's cost per certificate with and without the audit. Both are printed; the target is judged
 * on throughput.
 */
async function auditCost(alg: Alg, dir: string, base: LoadSpec, c: number) {
  const runs: AuditRun[] = [];
  for (const audit of QUICK ? (['on', 'off'] as const) : (['on', 'off', 'off', 'on', 'on', 'off', 'off', 'on'] as const)) {
    const s = await startAuditServe(alg, dir, audit);
    try {
      runs.push(await measureAuditRun(s, base, c, audit, 'audit-cost run'));
    } finally {
      await stop(s.proc);
    }
  }
  const of = (a: 'on' | 'off', f: (r: AuditRun) => number) => runs.filter((r) => r.audit === a).map(f);
  const mean = (a: 'on' | 'off', k: 'rate' | 'serverUsPerCert' | 'loadgenUsPerCert') => summarize(of(a, (r) => r[k])).mean;
  const loss = relativeLoss(
    of('on', (r) => r.rate),
    of('off', (r) => r.rate),
  );
  const lossPercent = loss.percent;
  const cpuOf = (r: AuditRun) => r.serverUsPerCert + r.loadgenUsPerCert;
  const cpuLoss = relativeLoss(of('off', cpuOf), of('on', cpuOf));
  const cpuLossPercent = cpuLoss.percent;
  // With four starts a side the interval is wide: it says how far apart two runs of this benchmark may land.
  const interval = (l: LossEstimate) => (Number.isFinite(l.ci95) ? ` (95% interval ±${fmt(l.ci95, 1)} points)` : '');
  console.log(`audit cost at c=${c}, a fresh serve per run: ${runs.map((r) => `${r.audit} ${fmt(r.rate)}`).join(', ')} certs/s`);
  console.log(
    `  mean with the audit ${fmt(mean('on', 'rate'))}/s, without ${fmt(mean('off', 'rate'))}/s: ${fmt(lossPercent, 1)}%${interval(loss)} of throughput lost to it (target: under 10%)`,
  );
  console.log(
    `  CPU per certificate, server + load generator: with the audit ${fmt(mean('on', 'serverUsPerCert'))} + ${fmt(mean('on', 'loadgenUsPerCert'))} µs, without ${fmt(mean('off', 'serverUsPerCert'))} + ${fmt(mean('off', 'loadgenUsPerCert'))} µs: ${fmt(cpuLossPercent, 1)}%${interval(cpuLoss)} lost measured so`,
  );
  return {
    concurrency: c,
    runs,
    meanOn: mean('on', 'rate'),
    meanOff: mean('off', 'rate'),
    lossPercent,
    lossCi95: loss.ci95,
    cpuLossPercent,
    cpuLossCi95: cpuLoss.ci95,
  };
}

interface AuditRun {
  audit: 'on' | 'off';
  rate: number;
  serverUsPerCert: number;
  /** The primary alone (with --workers, the process that writes the audit on SQLite). */
  primaryUsPerCert: number;
  loadgenUsPerCert: number;
}

/** A serve for the audit-cost runs; --log-level error: its warning that the audit is off would repeat in every run's output. */
function startAuditServe(alg: Alg, dir: string, audit: 'on' | 'off', env: Record<string, string> = {}): Promise<Server> {
  return startMeshca(alg, ['--log-level', 'error'], { dir, env: { MESHCA_AUDIT: audit, ...env } });
}

/** One audit-cost run on a started serve: AUDIT_WARMUP, then AUDIT_DURATION at concurrency c, with CPU per certificate from /proc. */
async function measureAuditRun(s: Server, base: LoadSpec, c: number, audit: 'on' | 'off', what: string): Promise<AuditRun> {
  const spec = {
    ...base,
    target: s.grpc,
    concurrency: c,
    connections: Math.min(c, 8),
    warmupMs: AUDIT_WARMUP,
    durationMs: AUDIT_DURATION,
    sample: 0,
  };
  let window: Promise<CpuWindow> | undefined;
  const r = await runLoad(spec, {
    onSpawn: (child) => {
      window = cpuWindow(s.proc.pid!, child.pid!, spec.warmupMs, spec.durationMs);
    },
  });
  if (r.failed > 0) throw new Error(`${what} (${audit}) had ${r.failed} failed calls: ${JSON.stringify(r.errors)}`);
  const w = await window!;
  const certs = r.rate * w.seconds;
  return {
    audit,
    rate: r.rate,
    serverUsPerCert: (w.serverMs * 1000) / certs,
    primaryUsPerCert: (w.primaryMs * 1000) / certs,
    loadgenUsPerCert: (w.loadgenMs * 1000) / certs,
  };
}

/** Pairs of the paired audit-cost runs (AUDIT_PAIRS overrides, e.g. for an A/A check). */
const AUDIT_PAIRS = Number(process.env.AUDIT_PAIRS ?? (QUICK ? 1 : 4));

/**
 * The audit's cost measured in pairs: two `serve`s at once, one with the audit and one without
 * (each its own copy of the state directory, the production shape of --workers each), each driven
 * by its own load generator at concurrency c over the same seconds. The runs of auditCost above are
 * separate starts a minute apart, and the machine's speed moves within a minute, which their
 * interval shows. Here the machine's moods fall on both sides of a pair
 * alike, so the ratio of their CPU per certificate keeps the audit's cost and loses the drift.
 *
 * Throughput is not the paired figure: the two servers share the cores, and the one whose primary
 * is busy writing the audit has one more runnable process for the scheduler to be fair to, so it
 * gets more of the machine than its efficiency earns. CPU per certificate (all of a server's
 * processes plus its load generator, from /proc) is what the cores divide into throughput when one
 * server runs alone, so 1 - off/on of it is the throughput lost. The primary's share is printed
 * too: on SQLite it is the process that writes the rows.
 *
 * AUDIT_BOTH=on runs both sides with the audit (an A/A check: it shows the design's own bias), and
 * PAIR_B_ENV='{"NAME":"value"}' adds environment to the second side only, so that two settings can
 * be compared the same way (AUDIT_BOTH=on PAIR_B_ENV='{"MESHCA_AUDIT_FLUSH_MS":"20"}').
 */
async function pairedAuditCost(alg: Alg, dir: string, base: LoadSpec, c: number) {
  let bEnv: Record<string, string> = {};
  try {
    if (process.env.PAIR_B_ENV) bEnv = JSON.parse(process.env.PAIR_B_ENV) as Record<string, string>;
  } catch (e) {
    throw new Error(`PAIR_B_ENV must be a JSON object of environment variables: ${(e as Error).message}`, { cause: e });
  }
  const copy = mkdtempSync(join(tmpdir(), `meshca-bench-${alg}-pair-`));
  cpSync(dir, copy, { recursive: true });
  const sides = [
    { audit: 'on' as const, dir, env: {} },
    { audit: process.env.AUDIT_BOTH === 'on' ? ('on' as const) : ('off' as const), dir: copy, env: bEnv },
  ];
  // "on" and "off" name the sides; with AUDIT_BOTH=on both have the audit.
  const pairs: { on: AuditRun; off: AuditRun }[] = [];
  try {
    for (let k = 0; k < AUDIT_PAIRS; k++) {
      // Which side starts first alternates, so that neither always gets the head start.
      const order = k % 2 === 0 ? sides : [sides[1], sides[0]];
      const servers = await Promise.all(order.map((x) => startAuditServe(alg, x.dir, x.audit, x.env)));
      try {
        const measured = await Promise.all(servers.map((s, i) => measureAuditRun(s, base, c, order[i].audit, 'paired audit-cost run')));
        const [on, off] = k % 2 === 0 ? measured : [measured[1], measured[0]];
        pairs.push({ on, off });
      } finally {
        await Promise.all(servers.map((s) => stop(s.proc)));
      }
    }
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
  const cpu = (x: AuditRun) => x.serverUsPerCert + x.loadgenUsPerCert;
  const loss = pairedLoss(
    pairs.map((p) => cpu(p.off)),
    pairs.map((p) => cpu(p.on)),
  );
  const primary = pairedLoss(
    pairs.map((p) => cpu(p.on) - p.on.primaryUsPerCert + p.off.primaryUsPerCert),
    pairs.map((p) => cpu(p.on)),
  );
  const mean = (f: (p: (typeof pairs)[number]) => number) => summarize(pairs.map(f)).mean;
  const interval = Number.isFinite(loss.ci95) ? ` (95% interval ±${fmt(loss.ci95, 1)} points over ${pairs.length} pairs)` : '';
  console.log(
    `audit cost in pairs at c=${c}, two serves at once (${sides[0].audit} / ${sides[1].audit}): ${pairs.map((p) => `${fmt(cpu(p.on))} / ${fmt(cpu(p.off))} µs`).join(', ')} of CPU per certificate, server + load generator`,
  );
  console.log(
    `  ${fmt(loss.percent, 1)}%${interval} of throughput lost to it, from CPU per certificate (target: under 10%); the primary alone ${fmt(
      mean((p) => p.on.primaryUsPerCert),
      1,
    )} against ${fmt(
      mean((p) => p.off.primaryUsPerCert),
      1,
    )} µs per certificate, ${fmt(primary.percent, 1)} points of that`,
  );
  return {
    concurrency: c,
    sides: sides.map((x) => x.audit),
    pairs,
    lossPercent: loss.percent,
    lossCi95: loss.ci95,
    primaryLossPercent: primary.percent,
  };
}

interface CpuWindow {
  seconds: number;
  serverMs: number;
  /** The primary alone (with --workers, the process that writes the audit on SQLite). */
  primaryMs: number;
  loadgenMs: number;
}

/**
 * CPU milliseconds of the server's process tree and of the load generator over the load
 * generator's measured window: from `warmupMs` after it was spawned to `warmupMs + durationMs`.
 * Its own window starts a little later (it starts node and connects first), so this one lies
 * inside the loaded period and ends before the load does.
 */
async function cpuWindow(serverPid: number, loadgenPid: number, warmupMs: number, durationMs: number): Promise<CpuWindow> {
  const spawned = Date.now();
  await new Promise((r) => setTimeout(r, warmupMs));
  const pids = processTree(serverPid);
  const server = () => totalCpuMs(pids);
  const s0 = server();
  const p0 = cpuMs(serverPid);
  const g0 = cpuMs(loadgenPid);
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, spawned + warmupMs + durationMs - Date.now()));
  return {
    seconds: (Date.now() - t0) / 1000,
    serverMs: server() - s0,
    primaryMs: cpuMs(serverPid) - p0,
    loadgenMs: cpuMs(loadgenPid) - g0,
  };
}

/** SERVER_WARMUP of closed loop before a server's measured levels, printed and not counted. */
async function warmUp(name: string, load: LoadSpec): Promise<LoadResult> {
  const r = await runLoad({ ...load, concurrency: WARMUP_CONCURRENCY, durationMs: SERVER_WARMUP, warmupMs: 0, sample: 0 });
  console.log(
    `${name} warm-up: c=${WARMUP_CONCURRENCY} for ${fmt(SERVER_WARMUP / 1000)} s, ${fmt(r.rate)} certs/s, failed ${r.failed} (not counted)`,
  );
  return r;
}

async function cfsslScenario(alg: Alg, dir: string, pool: Workload[], base: LoadSpec) {
  const ca = join(dir, 'clusters', 'default', 'cacerts');
  const port = 20000 + Math.floor(Math.random() * 20000);
  const proc = spawn(
    'cfssl',
    ['serve', '-address', '127.0.0.1', '-port', String(port), '-ca', join(ca, 'ca-cert.pem'), '-ca-key', join(ca, 'ca-key.pem')],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 50; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/api/v1/cfssl/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const poolFile = join(dir, 'cfssl-pool.json');
  writeFileSync(poolFile, JSON.stringify(pool.map((w) => ({ body: JSON.stringify({ certificate_request: w.csrPem }) }))));
  const rows: Record<string, unknown>[] = [];
  let best = 0;
  // The same warm-up as meshca's (cfssl's Go code needs no JIT, but its heap and the load
  // generator's own JIT get the same start).
  const cfsslLoad = { ...base, mode: 'cfssl' as const, target: `127.0.0.1:${port}`, rootPem: undefined, pool: poolFile };
  await warmUp('cfssl  ', { ...cfsslLoad, connections: 64 });
  for (const c of LEVELS) {
    const r = await runLoad({ ...cfsslLoad, concurrency: c, connections: c });
    best = Math.max(best, r.rate);
    rows.push({ concurrency: c, rate: r.rate, p50: r.p50, p99: r.p99, failed: r.failed });
    console.log(
      `cfssl   c=${String(c).padStart(3)}  ${fmt(r.rate).padStart(7)} certs/s  p50 ${fmt(r.p50, 2)} ms  p99 ${fmt(r.p99, 2)} ms  failed ${r.failed}`,
    );
  }
  await stop(proc);
  return { best, rows };
}

/** `--only=audit`: the paired audit cost alone, EC at c=64 on a fresh state directory (for work on the audit path). */
async function auditOnly(results: Record<string, unknown>) {
  console.log(`\n== audit cost alone (ec-p256, c=64, ${AUDIT_PAIRS} pairs)`);
  const { server, base } = await setUp('ec-p256');
  await stop(server.proc);
  results['ec-p256'] = { auditCostPaired: await pairedAuditCost('ec-p256', server.dir, base, 64) };
  rmSync(server.dir, { recursive: true, force: true });
}

async function storm(results: Record<string, unknown>) {
  const n = QUICK ? 2000 : 10_000;
  console.log(`\n== storm: ${fmt(n)} distinct workloads (EC P-256) at once`);
  const server = await startMeshca('ec-p256');
  const keys = await keyPool('ec-p256', n);
  const w = await workloads(server.dir, keys, n, 'storm');
  const poolFile = join(server.dir, 'storm.json');
  writePool(poolFile, w);
  const r = await runLoad({
    mode: 'grpc',
    target: server.grpc,
    rootPem: server.rootPem,
    servername: 'localhost',
    pool: poolFile,
    connections: 100,
    concurrency: n,
    durationMs: 0,
    warmupMs: 0,
    total: n,
    retries: 5,
    sample: 10,
  });
  const mem = treeMemory(server.proc.pid!);
  console.log(
    `storm: ${r.ok}/${n} certified in ${fmt(r.elapsedMs)} ms (${fmt(r.rate)}/s), failed ${r.failed}, retried ${r.retried}, p99 ${fmt(r.p99)} ms, server peak RSS ${fmt(mem.peak / 1048576, 1)} MB`,
  );
  results.storm = { workloads: n, ok: r.ok, failed: r.failed, retried: r.retried, elapsedMs: r.elapsedMs, p99: r.p99, peakRss: mem.peak };

  await stop(server.proc);
  rmSync(server.dir, { recursive: true, force: true });
}

async function connections(workers: number, results: Record<string, unknown>) {
  const keys = await keyPool('ec-p256', POOL);
  console.log(`\n== memory at 1,000 concurrent connections, ${workers} gRPC process(es)`);
  const s2 = await startMeshca('ec-p256', ['--workers', String(workers)]);
  const w2 = await workloads(s2.dir, keys, POOL, 'conn');
  writePool(join(s2.dir, 'conn.json'), w2);
  const before = treeMemory(s2.proc.pid!);
  let during = { rss: 0, peak: 0 };
  let settled = { rss: 0, peak: 0 };
  let sockets = 0;
  const rc = await runLoad(
    {
      mode: 'grpc',
      target: s2.grpc,
      rootPem: s2.rootPem,
      servername: 'localhost',
      pool: join(s2.dir, 'conn.json'),
      connections: 0,
      concurrency: 0,
      durationMs: 0,
      warmupMs: 0,
      idleConnections: 1000,
    },
    {
      onRunning: async () => {
        await new Promise((r) => setTimeout(r, 500));
        during = treeMemory(s2.proc.pid!);
        // Then as a mesh holds them: 1,000 connections open and idle between renewals. This shows
        // whether memory taken by the 1,000 handshakes and calls comes back once idle.
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        settled = treeMemory(s2.proc.pid!);
        sockets = treeSockets(s2.proc.pid!);
      },
    },
  );
  const procs = workers > 1 ? workers + 1 : 1;
  console.log(
    `1,000 connections: ${rc.ok} calls ok, ${rc.failed} failed; server RSS ${fmt(before.rss / 1048576, 1)} MB idle -> ${fmt(during.rss / 1048576, 1)} MB just after the calls -> ${fmt(settled.rss / 1048576, 1)} MB ${SETTLE_MS / 1000} s later with the connections still open (${sockets} sockets held; peak ${fmt(settled.peak / 1048576, 1)} MB, ${procs} process(es))`,
  );
  ((results.connections ??= []) as unknown[]).push({
    workers,
    connections: 1000,
    ok: rc.ok,
    failed: rc.failed,
    rssIdle: before.rss,
    rssWithConnections: during.rss,
    rssSettled: settled.rss,
    settleMs: SETTLE_MS,
    socketsHeld: sockets,
    peakRss: settled.peak,
  });
  await stop(s2.proc);
  rmSync(s2.dir, { recursive: true, force: true });
}

async function main() {
  console.log(
    `meshca benchmark: ${availableParallelism()} cores, ${WORKERS} server workers, node ${process.version}${QUICK ? ' (quick)' : ''}`,
  );
  const speed = opensslSpeed(QUICK ? 1 : 3);
  console.log(
    `openssl speed (1 core): ECDSA P-256 sign ${fmt(speed.ecSign)}/s verify ${fmt(speed.ecVerify)}/s; RSA-2048 sign ${fmt(speed.rsaSign)}/s verify ${fmt(speed.rsaVerify)}/s`,
  );
  const results: Record<string, unknown> = { date: new Date().toISOString(), cores: availableParallelism(), node: process.version, speed };
  const only = [...args].find((a) => a.startsWith('--only='))?.slice(7);
  if (!only || only === 'ec') await scenario('ec-p256', speed, results);
  if (!only || only === 'rsa') await scenario('rsa-2048', speed, results);
  if (only === 'audit') await auditOnly(results);
  if (!only || only === 'storm') await storm(results);
  if (!only || only === 'conn') for (const workers of new Set([1, WORKERS])) await connections(workers, results);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const out = join(ROOT, 'bench/results/latest.json');
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nfigures written to ${out}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
