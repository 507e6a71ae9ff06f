/**
 * Load generator process for `npm run bench`: HTTP/2 + TLS gRPC client that keeps a fixed number
 * of CreateCertificate calls in flight over several connections, each call a different CSR from
 * the pool, and reports throughput and latency as one JSON line. Runs as its own process so the
 * server's figures include no client work in its own event loop. It shares the machine's cores
 * with the server, so the gRPC client is the hand-written one of lib/h2raw.ts (a fraction of
 * node:http2's CPU per call): every request is encoded once at start-up, every response's headers
 * and trailers are decoded and checked.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, Agent } from 'node:http';
import { H2Client, prepareRequest, type PreparedRequest } from './lib/h2raw.js';
import { decodeChain } from './lib/wire.js';

export interface LoadSpec {
  mode: 'grpc' | 'cfssl';
  target: string; // host:port
  rootPem?: string;
  servername?: string;
  /** Pool file: JSON array of {frame: base64 gRPC frame, token} (grpc) or {body: JSON string} (cfssl). */
  pool: string;
  connections: number;
  /** Calls in flight in total (spread over the connections). */
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  /** Stop after this many calls (storm mode); 0 = run for durationMs. */
  total?: number;
  /** Retries per call on failure (storm mode: a workload agent retries). */
  retries?: number;
  /** Keep this many chains (leaf..root PEM) for an openssl check by the caller. */
  sample?: number;
  /** Open this many idle connections after one call each, then report (memory test). */
  idleConnections?: number;
  /** Open loop: start calls at this many per second (latency at a given load), instead of a closed loop. */
  rate?: number;
}

interface PoolEntry {
  frame?: string;
  token?: string;
  body?: string;
}

const METHOD_PATH = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

const spec = JSON.parse(process.argv[2]) as LoadSpec;
const [targetHost, targetPort] = splitHostPort(spec.target);
const pool = (JSON.parse(readFileSync(spec.pool, 'utf8')) as PoolEntry[]).map((p) => ({
  // The whole request (HEADERS + DATA frames) encoded once; a call copies it and patches the stream id.
  req: p.frame
    ? prepareRequest(
        {
          path: METHOD_PATH,
          authority: spec.target,
          scheme: spec.rootPem ? 'https' : 'http',
          headers: [
            ['content-type', 'application/grpc'],
            ['te', 'trailers'],
            ['authorization', `Bearer ${p.token}`],
          ],
        },
        Buffer.from(p.frame, 'base64'),
      )
    : undefined,
  body: p.body,
}));

function splitHostPort(t: string): [string, number] {
  const i = t.lastIndexOf(':');
  return [t.slice(0, i).replace(/^\[|\]$/g, ''), Number(t.slice(i + 1))];
}

const latencies: number[] = [];
let ok = 0;
let failed = 0;
let retried = 0;
const errors: Record<string, number> = {};
const samples: string[][] = [];
let measuring = false;
let stopping = false;
let next = 0;

type Entry = (typeof pool)[number];

function pick(): Entry {
  const p = pool[next % pool.length];
  next++;
  return p;
}

function clientFor(): H2Client {
  return new H2Client({ host: targetHost, port: targetPort, ca: spec.rootPem, servername: spec.servername });
}

/** Calls complete through callbacks (never synchronously): no promise per call on the hot path. */
type Done = (err: string | undefined) => void;

function grpcCall(c: H2Client, p: Entry, done: Done): void {
  const keep = !!spec.sample && samples.length < spec.sample;
  c.call(p.req as PreparedRequest, keep, (err, body) => {
    if (err === undefined && body && samples.length < spec.sample!) samples.push(decodeChain(body));
    done(err);
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: spec.connections });
function cfsslCall(p: Entry, cb: Done): void {
  const [host, port] = spec.target.split(':');
  let settled = false;
  const done: Done = (err) => {
    if (!settled) {
      settled = true;
      cb(err);
    }
  };
  const req = httpRequest(
    { host, port: Number(port), method: 'POST', path: '/api/v1/cfssl/sign', agent, headers: { 'content-type': 'application/json' } },
    (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        if (res.statusCode === 200 && body.includes('"success":true')) {
          if (spec.sample && samples.length < spec.sample) samples.push([JSON.parse(body).result.certificate as string]);
          done(undefined);
        } else done(`http ${res.statusCode}`);
      });
    },
  );
  req.on('error', (e) => done(e.message));
  req.end(p.body);
}

function countError(e: string): void {
  const k = e.slice(0, 120);
  errors[k] = (errors[k] ?? 0) + 1;
}

/** One closed-loop caller: a call, then the next, until told to stop or the quota is used up. */
function worker(c: H2Client | undefined, quota: { left: number } | undefined): Promise<void> {
  return new Promise((resolve) => {
    const call = (p: Entry, done: Done) => (spec.mode === 'grpc' ? grpcCall(c!, p, done) : cfsslCall(p, done));
    const nextCall = (): void => {
      if (stopping) return resolve();
      if (quota) {
        if (quota.left <= 0) return resolve();
        quota.left--;
      }
      attempt(pick(), 0);
    };
    const attempt = (p: Entry, n: number): void => {
      const t0 = performance.now();
      call(p, (err) => {
        if (err === undefined) {
          if (measuring) {
            ok++;
            latencies.push(performance.now() - t0);
          }
        } else if (n < (spec.retries ?? 0)) {
          retried++;
          setTimeout(attempt, 50 * (n + 1), p, n + 1);
          return;
        } else if (measuring) {
          failed++;
          countError(err);
        }
        nextCall();
      });
    };
    nextCall();
  });
}

function pct(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function main() {
  const sessions = spec.mode === 'grpc' ? Array.from({ length: spec.connections }, () => clientFor()) : [];
  if (spec.idleConnections) {
    // Memory test: many connections, one call each, then hold them open.
    measuring = true;
    const extra = Array.from({ length: spec.idleConnections }, () => clientFor());
    const t0 = performance.now();
    await Promise.all(
      extra.map(
        (s) =>
          new Promise<void>((resolve) => grpcCall(s, pick(), (err) => (err === undefined ? ok++ : (failed++, countError(err)), resolve()))),
      ),
    );
    const elapsed = performance.now() - t0;
    process.stdout.write(`${JSON.stringify({ ok, failed, elapsedMs: elapsed, open: extra.filter((s) => s.isOpen).length })}\n`);
    // Hold until the parent has read the server's memory, then exit.
    await new Promise((r) => process.stdin.once('data', r));
    for (const s of [...extra, ...sessions]) s.destroy();
    // stdin would keep the event loop alive.
    process.exit(0);
  }
  if (spec.rate) return openLoop(sessions);
  const quota = spec.total ? { left: spec.total } : undefined;
  const workers: Promise<void>[] = [];
  for (let i = 0; i < spec.concurrency; i++) workers.push(worker(sessions[i % Math.max(1, sessions.length)], quota));
  if (quota) {
    measuring = true;
    const t0 = performance.now();
    await Promise.all(workers);
    report(performance.now() - t0);
  } else {
    await new Promise((r) => setTimeout(r, spec.warmupMs));
    measuring = true;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, spec.durationMs));
    measuring = false;
    const elapsed = performance.now() - t0;
    stopping = true;
    await Promise.all(workers);
    report(elapsed);
  }
  await Promise.all(sessions.map((s) => s.close()));
  agent.destroy();
}

/** Starts calls at a fixed rate whatever the latency, so queueing shows up in the percentiles (after a ramp over the warm-up). */
async function openLoop(sessions: H2Client[]) {
  const started = performance.now();
  let launched = 0;
  let inflight = 0;
  let measureStart = 0;
  const end = started + spec.warmupMs + spec.durationMs;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      if (!measuring && now >= started + spec.warmupMs) {
        measuring = true;
        measureStart = now;
      }
      if (now >= end) {
        clearInterval(tick);
        measuring = false;
        const wait = setInterval(() => inflight === 0 && (clearInterval(wait), resolve()), 5);
        return;
      }
      // The rate ramps up linearly over the warm-up and holds from then on, so the measured window
      // does not start with the backlog a cold server (or this cold process) builds at full rate.
      const t = now - started;
      const w = spec.warmupMs;
      const due = Math.floor(((t < w ? (t * t) / (2 * w) : t - w / 2) / 1000) * spec.rate!);
      for (; launched < due; launched++) {
        const p = pick();
        const t0 = performance.now();
        const counted = measuring;
        inflight++;
        grpcCall(sessions[launched % sessions.length], p, (err) => {
          inflight--;
          if (!counted) return;
          if (err === undefined) {
            ok++;
            latencies.push(performance.now() - t0);
          } else {
            failed++;
            countError(err);
          }
        });
      }
    }, 1);
  });
  report(end - measureStart);
  await Promise.all(sessions.map((s) => s.close()));
}

function report(elapsedMs: number) {
  const sorted = latencies.sort((a, b) => a - b);
  process.stdout.write(
    `${JSON.stringify({ ok, failed, retried, errors, elapsedMs, rate: (ok / elapsedMs) * 1000, p50: pct(sorted, 0.5), p99: pct(sorted, 0.99), max: sorted[sorted.length - 1] ?? 0, samples })}\n`,
  );
}

main().catch((e) => {
  process.stderr.write(`loadgen: ${(e as Error).stack}\n`);
  process.exit(1);
});
