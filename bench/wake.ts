/**
 * What an idle event loop costs on this machine, apart from meshca: a bare node:tls echo server
 * (1,000-byte requests, 2,500-byte answers, one write per read, as meshca's transport answers)
 * driven first as a closed loop and then as open loops at 1/2, 1/4, 1/8 and 1/16 of that rate.
 * For each run it prints the server's CPU per request (from /proc) and how often its event loop
 * slept (voluntary context switches per request), then the least-squares line through the runs:
 * the CPU a request costs when it arrives to a sleeping loop rather than to a busy one, which on a
 * VM can make meshca's open-loop requests dearer than its closed-loop ones (`node dist/bench/cpu.js`
 * prints serverSleepsPerCert for meshca itself).
 *
 *   node dist/bench/wake.js [--seconds 5] [--burn-us 0] [--connections 8]
 *
 * --burn-us spins that long per request in the server, standing in for issuance work.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg } from './lib/args.js';
import { cpuMs, sleeps } from './lib/proc.js';

const REQ = 1000;
const RES = 2500;

function serve(dir: string, burnUs: number): void {
  const answer = Buffer.alloc(RES, 0x61);
  const server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (sock) => {
    sock.setNoDelay(true);
    let pending = 0;
    sock.on('data', (d: Buffer) => {
      pending += d.length;
      let n = 0;
      for (; pending >= REQ; pending -= REQ) {
        n++;
        if (burnUs > 0) {
          const end = performance.now() + burnUs / 1000;
          while (performance.now() < end);
        }
      }
      if (n === 1) sock.write(answer);
      else if (n > 1) sock.write(Buffer.concat(Array.from({ length: n }, () => answer)));
    });
    sock.on('error', () => sock.destroy());
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as { port: number }).port}\n`));
}

interface Conn {
  sock: TLSSocket;
  starts: number[];
  got: number;
}

async function open(port: number, n: number): Promise<Conn[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Conn>((resolve, reject) => {
          const sock = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => resolve(c));
          sock.setNoDelay(true);
          const c: Conn = { sock, starts: [], got: 0 };
          sock.on('error', reject);
        }),
    ),
  );
}

interface Result {
  rate: number;
  usPerReq: number;
  sleepsPerReq: number;
  p50: number;
  p99: number;
}

/** rate 0: closed loop with `inflight` requests per connection. */
async function run(conns: Conn[], serverPid: number, seconds: number, rate: number, inflight: number): Promise<Result> {
  const req = Buffer.alloc(REQ, 0x62);
  const lat: number[] = [];
  let measuring = false;
  let done = 0;
  let stop = false;
  for (const c of conns) {
    c.sock.removeAllListeners('data');
    c.sock.on('data', (d: Buffer) => {
      c.got += d.length;
      while (c.got >= RES) {
        c.got -= RES;
        const t0 = c.starts.shift()!;
        if (measuring) {
          lat.push(performance.now() - t0);
          done++;
        }
        if (rate === 0 && !stop) {
          c.starts.push(performance.now());
          c.sock.write(req);
        }
      }
    });
  }
  let timer: NodeJS.Timeout | undefined;
  const warm = 1500;
  const t0 = performance.now();
  if (rate === 0) {
    for (const c of conns)
      for (let i = 0; i < inflight; i++) {
        c.starts.push(performance.now());
        c.sock.write(req);
      }
  } else {
    let sent = 0;
    timer = setInterval(() => {
      const due = Math.floor(((performance.now() - t0) / 1000) * rate);
      for (; sent < due; sent++) {
        const c = conns[sent % conns.length];
        c.starts.push(performance.now());
        c.sock.write(req);
      }
    }, 1);
  }
  await new Promise((r) => setTimeout(r, warm));
  measuring = true;
  const cpu0 = cpuMs(serverPid);
  const sleeps0 = sleeps(serverPid);
  const m0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu1 = cpuMs(serverPid);
  const sleeps1 = sleeps(serverPid);
  const elapsed = performance.now() - m0;
  measuring = false;
  stop = true;
  if (timer) clearInterval(timer);
  // Let what is in flight drain before the next run.
  while (conns.some((c) => c.starts.length > 0)) await new Promise((r) => setTimeout(r, 20));
  lat.sort((a, b) => a - b);
  const q = (x: number) => lat[Math.min(lat.length - 1, Math.floor(x * lat.length))] ?? 0;
  return {
    rate: (done / elapsed) * 1000,
    usPerReq: ((cpu1 - cpu0) * 1000) / done,
    sleepsPerReq: (sleeps1 - sleeps0) / done,
    p50: q(0.5),
    p99: q(0.99),
  };
}

async function main(): Promise<void> {
  if (process.argv[2] === 'server') return serve(process.argv[3], Number(process.argv[4]));
  const seconds = arg('seconds', 5);
  const burnUs = arg('burn-us', 0);
  const n = arg('connections', 8);
  const dir = mkdtempSync(join(tmpdir(), 'meshca-wake-'));
  const gen = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-subj',
      '/CN=localhost',
      '-days',
      '1',
    ],
    { encoding: 'utf8' },
  );
  if (gen.status !== 0) throw new Error(`openssl req failed: ${gen.stderr}`);
  const server = spawn(process.execPath, [new URL(import.meta.url).pathname, 'server', dir, String(burnUs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = Number(await new Promise<string>((resolve) => server.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()))));
    const conns = await open(port, n);
    const rows: Result[] = [];
    const closed = await run(conns, server.pid!, seconds, 0, 8);
    rows.push(closed);
    for (const div of [2, 4, 8, 16]) rows.push(await run(conns, server.pid!, seconds, Math.round(closed.rate / div), 0));
    console.log(`bare node:tls echo, ${n} connections, ${burnUs} µs of work per request in the server`);
    for (const [i, r] of rows.entries())
      console.log(
        `${i === 0 ? 'closed loop (8 in flight per connection)' : `open loop at 1/${2 ** i} of it`.padEnd(41)}`.padEnd(42) +
          `${Math.round(r.rate).toString().padStart(6)} req/s  server ${r.usPerReq.toFixed(0).padStart(4)} µs CPU/req  ${r.sleepsPerReq.toFixed(2)} sleeps/req  p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)} ms`,
      );
    // Least squares: µs/req = a + b * sleeps/req.
    const xs = rows.map((r) => r.sleepsPerReq);
    const ys = rows.map((r) => r.usPerReq);
    const mx = xs.reduce((a, b) => a + b) / xs.length;
    const my = ys.reduce((a, b) => a + b) / ys.length;
    const b = xs.reduce((s, x, i) => s + (x - mx) * (ys[i] - my), 0) / xs.reduce((s, x) => s + (x - mx) ** 2, 0);
    console.log(`fit: ${(my - b * mx).toFixed(0)} µs per request + ${b.toFixed(0)} µs per sleep of the server's event loop`);
    console.log(JSON.stringify({ burnUs, connections: n, rows, usPerRequest: my - b * mx, usPerSleep: b }));
    for (const c of conns) c.sock.destroy();
  } finally {
    server.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
