import { spawnSync } from 'node:child_process';

export interface SpeedFigures {
  ecSign: number;
  ecVerify: number;
  rsaSign: number;
  rsaVerify: number;
}

/** One issuance needs one CSR verification and one signature: limit = 1 / (1/sign + 1/verify). */
export function issuanceLimit(sign: number, verify: number): number {
  return 1 / (1 / sign + 1 / verify);
}

type SpeedAlg = 'ec' | 'rsa';

/** `openssl speed`'s name for each algorithm and the line that carries its sign/s and verify/s. */
const ALGS: Record<SpeedAlg, { name: string; line: RegExp }> = {
  ec: { name: 'ecdsap256', line: /256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/ },
  rsa: { name: 'rsa2048', line: /rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/ },
};

/** Runs `openssl speed` on one core for the given algorithms and parses their sign/s and verify/s columns. */
function run(seconds: number, algs: SpeedAlg[]): Record<SpeedAlg, { sign: number; verify: number }> {
  const r = spawnSync('openssl', ['speed', '-seconds', String(seconds), ...algs.map((a) => ALGS[a].name)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl speed failed: ${r.stderr}`);
  const out = {} as Record<SpeedAlg, { sign: number; verify: number }>;
  for (const a of algs) {
    const m = ALGS[a].line.exec(r.stdout);
    if (!m) throw new Error(`cannot parse openssl speed output:\n${r.stdout}`);
    out[a] = { sign: Number(m[1]), verify: Number(m[2]) };
  }
  return out;
}

/** Both algorithms, once, at the benchmark's start. */
export function opensslSpeed(seconds = 3): SpeedFigures {
  const { ec, rsa } = run(seconds, ['ec', 'rsa']);
  return { ecSign: ec.sign, ecVerify: ec.verify, rsaSign: rsa.sign, rsaVerify: rsa.verify };
}

/** One algorithm's sign/s and verify/s on one core, for the limit next to a scenario's runs. */
export function opensslAlgSpeed(alg: SpeedAlg, seconds = 3): { sign: number; verify: number } {
  return run(seconds, [alg])[alg];
}
