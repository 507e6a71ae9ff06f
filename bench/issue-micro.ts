/**
 * Micro-benchmark of workload issuance on one core: the library path against the lean path,
 * for an EC P-256 CA with P-256 requests and an RSA-2048 CA with RSA-2048 requests, next to
 * the per-core limit 1/(1/sign + 1/verify) that `openssl speed` gives on this machine.
 *
 *   npx tsc -p . && node dist/bench/issue-micro.js [--seconds 4.5] [--rounds 3] [--pool 1000] [--rsa-keys 50] [--no-openssl]
 *
 * Everything runs on the main thread and is timed in CPU seconds, so the figures are per core.
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createCsr } from '../src/pki/csr.js';
import { issueWorkloadCertificate, issueWorkloadCertificateLibrary, type Signer, type WorkloadRequest } from '../src/pki/issue.js';
import { generateKeyPair, type KeyAlgorithm } from '../src/pki/keys.js';
import { createIntermediateCertificate, createRootCertificate } from '../src/pki/profiles.js';
import { arg } from './lib/args.js';

const SECONDS = arg('seconds', 4.5);
const ROUNDS = arg('rounds', 3);
const POOL = arg('pool', 1000);
const RSA_KEYS = arg('rsa-keys', 50);
const NOW = new Date();

function signerFor(alg: KeyAlgorithm): Signer {
  const rootKey = generateKeyPair(alg);
  const root = createRootCertificate({ key: rootKey.privateKey, now: NOW, subject: { organization: ['bench'], commonName: 'root' } });
  const ik = generateKeyPair(alg);
  const inter = createIntermediateCertificate({
    issuerCert: root,
    issuerKey: rootKey.privateKey,
    publicKey: ik.publicKey,
    subject: { organization: ['bench'], commonName: 'mesh intermediate' },
    days: 365,
    now: NOW,
  }).cert;
  return { cert: inter, key: ik.privateKey, chain: [root] };
}

/** Distinct requests: one key per request for EC, a few reused keys with distinct SANs for RSA (keygen is slow). */
function requestPool(alg: KeyAlgorithm, keyCount: number): WorkloadRequest[] {
  const keys: KeyObject[] = [];
  for (let i = 0; i < keyCount; i++) keys.push(generateKeyPair(alg).privateKey);
  const pool: WorkloadRequest[] = [];
  for (let i = 0; i < POOL; i++) {
    const id = `spiffe://cluster.local/ns/bench/sa/workload-${i}`;
    const csr = createCsr({ key: keys[i % keys.length], sans: { uris: [id] } });
    pool.push({ csr: csr.pem, identities: [id], ttlSeconds: 86_400, now: NOW });
  }
  return pool;
}

/**
 * Operations per CPU-second of `fn` over about `seconds` of CPU time, after a short warm-up.
 * CPU time, not wall time, like `openssl speed` (which counts user time): other processes on
 * the machine then slow the measurement down without skewing it.
 */
function rate(seconds: number, fn: (i: number) => void): number {
  for (let i = 0; i < 200; i++) fn(i);
  let n = 0;
  const start = process.cpuUsage();
  const budget = seconds * 1e6;
  let used = 0;
  while (used < budget) {
    for (let k = 0; k < 50; k++) fn(n++);
    const u = process.cpuUsage(start);
    used = u.user + u.system;
  }
  return n / (used / 1e6);
}

/**
 * The cost floor of Node's crypto API for one issuance: load the request's key (JWK, the
 * cheapest synchronous way), verify the request, sign the certificate. No encoding at all.
 */
function nodeFloor(alg: KeyAlgorithm, signer: Signer, seconds: number): number {
  const kp = generateKeyPair(alg);
  const jwk = kp.publicKey.export({ format: 'jwk' });
  const data = Buffer.alloc(alg.startsWith('ec') ? 300 : 560, 7);
  const reqSig = sign('sha256', data, kp.privateKey);
  const tbs = Buffer.alloc(alg.startsWith('ec') ? 400 : 700, 9);
  return rate(seconds, () => {
    const pub = createPublicKey({ key: jwk, format: 'jwk' });
    if (!verify('sha256', data, pub, reqSig)) throw new Error('verify failed');
    sign('sha256', tbs, signer.key);
  });
}

interface SpeedLimits {
  ec?: { sign: number; verify: number };
  rsa?: { sign: number; verify: number };
}

/** Single-core sign/s and verify/s from `openssl speed` (no -multi). */
function opensslSpeed(): SpeedLimits {
  const r = spawnSync('openssl', ['speed', '-seconds', '2', 'ecdsap256', 'rsa2048'], { encoding: 'utf8' });
  const out = `${r.stdout ?? ''}`;
  const limits: SpeedLimits = {};
  const rsa = /^rsa 2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/m.exec(out);
  if (rsa) limits.rsa = { sign: Number(rsa[1]), verify: Number(rsa[2]) };
  const ec = /^\s*256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/m.exec(out);
  if (ec) limits.ec = { sign: Number(ec[1]), verify: Number(ec[2]) };
  return limits;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function limit(x?: { sign: number; verify: number }): number | undefined {
  return x ? 1 / (1 / x.sign + 1 / x.verify) : undefined;
}

const fmt = (n: number): string => n.toFixed(0).padStart(7);
const pct = (n: number, of?: number): string => (of ? `${((100 * n) / of).toFixed(1)}%` : 'n/a').padStart(7);

function main(): void {
  const limits: SpeedLimits = process.argv.includes('--no-openssl') ? {} : opensslSpeed();
  const cases: { label: string; alg: KeyAlgorithm; keys: number; limit?: number; speed?: { sign: number; verify: number } }[] = [
    { label: 'EC P-256 CA, P-256 CSRs', alg: 'ec-p256', keys: POOL, limit: limit(limits.ec), speed: limits.ec },
    { label: 'RSA-2048 CA, RSA-2048 CSRs', alg: 'rsa-2048', keys: RSA_KEYS, limit: limit(limits.rsa), speed: limits.rsa },
  ];
  console.log(
    `node ${process.version}, openssl ${process.versions.openssl}; ${POOL} distinct CSRs per case; ` +
      `${SECONDS} CPU-s per path in ${ROUNDS} interleaved rounds (median); one core`,
  );
  for (const c of cases) {
    const signer = signerFor(c.alg);
    const pool = requestPool(c.alg, c.keys);
    // Interleaved rounds, median per path: a change in machine load then hits all three alike.
    const runs = { lib: [] as number[], fast: [] as number[], floor: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      runs.lib.push(rate(SECONDS / ROUNDS, (i) => issueWorkloadCertificateLibrary(signer, pool[i % pool.length])));
      runs.fast.push(rate(SECONDS / ROUNDS, (i) => issueWorkloadCertificate(signer, pool[i % pool.length])));
      runs.floor.push(nodeFloor(c.alg, signer, SECONDS / ROUNDS));
    }
    const [lib, fast, floor] = [median(runs.lib), median(runs.fast), median(runs.floor)];
    console.log(`\n${c.label}`);
    if (c.speed) console.log(`  openssl speed          sign ${fmt(c.speed.sign)}/s  verify ${fmt(c.speed.verify)}/s`);
    console.log(`  per-core limit        ${c.limit ? fmt(c.limit) : '    n/a'} certs/s   1/(1/sign + 1/verify)`);
    console.log(`  node crypto floor     ${fmt(floor)} certs/s ${pct(floor, c.limit)}  key import + verify + sign, no encoding`);
    console.log(`  library path          ${fmt(lib)} certs/s ${pct(lib, c.limit)}`);
    console.log(
      `  fast path             ${fmt(fast)} certs/s ${pct(fast, c.limit)}  (${(fast / lib).toFixed(1)}x library, ${pct(fast, floor).trim()} of node floor)`,
    );
  }
}

main();
