/**
 * Load generator process for `npm run bench`: HTTP/2 + TLS gRPC client that keeps a fixed number
 * of CreateCertificate calls in flight over several connections, each call a different CSR from
 * the pool, and reports throughput and latency as one JSON line. Runs as its own process so the
 * server's figures include no client work in its own event loop.
 */
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { readFileSync } from 'node:fs';
import { request as httpRequest, Agent } from 'node:http';
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

const spec = JSON.parse(process.argv[2]) as LoadSpec;
const pool = (JSON.parse(readFileSync(spec.pool, 'utf8')) as PoolEntry[]).map((p) => ({
  frame: p.frame ? Buffer.from(p.frame, 'base64') : undefined,
  token: p.token,
  body: p.body,
}));

const latencies: number[] = [];
let ok = 0;
let failed = 0;
let retried = 0;
const errors: Record<string, number> = {};
const samples: string[][] = [];
let measuring = false;
let stopping = false;
let next = 0;

function pick() {
  const p = pool[next % pool.length];
  next++;
  return p;
}

function sessionFor(i: number): ClientHttp2Session {
  const url = `${spec.rootPem ? 'https' : 'http'}://${spec.target}`;
  const s = connect(url, {
    ca: spec.rootPem,
    servername: spec.servername,
    settings: { initialWindowSize: 1 << 20 },
  });
  s.on('error', () => {});
  s.setMaxListeners(0);
  void i;
  return s;
}

function grpcCall(s: ClientHttp2Session, p: ReturnType<typeof pick>): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = s.request({
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: '/istio.v1.auth.IstioCertificateService/CreateCertificate',
      'content-type': 'application/grpc',
      te: 'trailers',
      authorization: `Bearer ${p.token}`,
    });
    const chunks: Buffer[] = [];
    let status: string | undefined;
    let message = '';
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) {
        status = String(h['grpc-status']);
        message = String(h['grpc-message'] ?? '');
      }
    });
    req.on('trailers', (t) => {
      status = String(t['grpc-status']);
      message = String(t['grpc-message'] ?? '');
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('close', () => {
      if (status === '0') {
        if (spec.sample && samples.length < spec.sample) samples.push(decodeChain(Buffer.concat(chunks)));
        resolve();
      } else reject(new Error(`grpc-status ${status ?? 'none'} ${decodeURIComponent(message)}`));
    });
    req.end(p.frame);
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: spec.connections });
function cfsslCall(p: ReturnType<typeof pick>): Promise<void> {
  const [host, port] = spec.target.split(':');
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port: Number(port), method: 'POST', path: '/api/v1/cfssl/sign', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        if (res.statusCode === 200 && body.includes('"success":true')) {
          if (spec.sample && samples.length < spec.sample) samples.push([JSON.parse(body).result.certificate as string]);
          resolve();
        } else reject(new Error(`http ${res.statusCode}`));
      });
    });
    req.on('error', reject);
    req.end(p.body);
  });
}

async function worker(s: ClientHttp2Session | undefined, quota: { left: number } | undefined) {
  while (!stopping) {
    if (quota) {
      if (quota.left <= 0) return;
      quota.left--;
    }
    const p = pick();
    for (let attempt = 0; ; attempt++) {
      const t0 = performance.now();
      try {
        await (spec.mode === 'grpc' ? grpcCall(s!, p) : cfsslCall(p));
        if (measuring) {
          ok++;
          latencies.push(performance.now() - t0);
        }
        break;
      } catch (e) {
        if (attempt < (spec.retries ?? 0)) {
          retried++;
          await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
          continue;
        }
        if (measuring) {
          failed++;
          const k = (e as Error).message.slice(0, 120);
          errors[k] = (errors[k] ?? 0) + 1;
        }
        break;
      }
    }
  }
}

function pct(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function main() {
  const sessions = spec.mode === 'grpc' ? Array.from({ length: spec.connections }, (_, i) => sessionFor(i)) : [];
  if (spec.idleConnections) {
    // Memory test: many connections, one call each, then hold them open.
    measuring = true;
    const extra = Array.from({ length: spec.idleConnections }, (_, i) => sessionFor(i));
    const t0 = performance.now();
    await Promise.all(extra.map((s) => grpcCall(s, pick()).then(() => ok++, () => failed++)));
    const elapsed = performance.now() - t0;
    process.stdout.write(`${JSON.stringify({ ok, failed, elapsedMs: elapsed, open: extra.filter((s) => !s.closed).length })}\n`);
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
  for (const s of sessions) s.close();
  agent.destroy();
}

/** Starts calls at a fixed rate whatever the latency, so queueing shows up in the percentiles. */
async function openLoop(sessions: ClientHttp2Session[]) {
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
      const due = Math.floor(((now - started) / 1000) * spec.rate!);
      for (; launched < due; launched++) {
        const p = pick();
        const t0 = performance.now();
        const counted = measuring;
        inflight++;
        grpcCall(sessions[launched % sessions.length], p).then(
          () => {
            inflight--;
            if (counted) {
              ok++;
              latencies.push(performance.now() - t0);
            }
          },
          (e: Error) => {
            inflight--;
            if (counted) {
              failed++;
              errors[e.message.slice(0, 120)] = (errors[e.message.slice(0, 120)] ?? 0) + 1;
            }
          },
        );
      }
    }, 1);
  });
  report(end - measureStart);
  for (const s of sessions) s.close();
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
