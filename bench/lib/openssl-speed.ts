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

/** Runs `openssl speed` on one core and parses the sign/s and verify/s columns. */
export function opensslSpeed(seconds = 3): SpeedFigures {
  const r = spawnSync('openssl', ['speed', '-seconds', String(seconds), 'ecdsap256', 'rsa2048'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl speed failed: ${r.stderr}`);
  const ec = /256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/.exec(r.stdout);
  const rsa = /rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/.exec(r.stdout);
  if (!ec || !rsa) throw new Error(`cannot parse openssl speed output:\n${r.stdout}`);
  return { ecSign: Number(ec[1]), ecVerify: Number(ec[2]), rsaSign: Number(rsa[1]), rsaVerify: Number(rsa[2]) };
}

/** One algorithm's sign/s and verify/s on one core, for the limit next to a scenario's runs. */
export function opensslAlgSpeed(alg: 'ec' | 'rsa', seconds = 3): { sign: number; verify: number } {
  const r = spawnSync('openssl', ['speed', '-seconds', String(seconds), alg === 'ec' ? 'ecdsap256' : 'rsa2048'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl speed failed: ${r.stderr}`);
  const m = (alg === 'ec' ? /256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/ : /rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/).exec(r.stdout);
  if (!m) throw new Error(`cannot parse openssl speed output:\n${r.stdout}`);
  return { sign: Number(m[1]), verify: Number(m[2]) };
}
