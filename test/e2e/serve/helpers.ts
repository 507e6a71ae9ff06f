import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { createCsr } from '../../../src/pki/csr.js';
import { generateKeyPair, privateKeyToPem } from '../../../src/pki/keys.js';
import { MESHCA_BIN, REPO_ROOT } from '../../helpers/run.js';

export const ID = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

/** A fresh workload key and a CSR for `uri`. */
export function workloadCsr(uri: string): { csr: string; key: KeyObject; keyPem: string } {
  const kp = generateKeyPair('ec-p256');
  return { csr: createCsr({ key: kp.privateKey, sans: { uris: [uri] } }).pem, key: kp.privateKey, keyPem: privateKeyToPem(kp.privateKey) };
}

export async function getJson<T = Record<string, unknown>>(httpAddr: string, path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(`http://${httpAddr}${path}`);
  return { status: res.status, body: (await res.json()) as T };
}

export async function getText(httpAddr: string, path: string): Promise<string> {
  return (await fetch(`http://${httpAddr}${path}`)).text();
}

/** The value of one Prometheus sample (0 when absent), e.g. metric(text, 'meshca_certificates_issued_total{method="mtls"}'). */
export function metric(text: string, sample: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return 0;
}

export interface AuditRow {
  outcome: string;
  reason: string;
  identity: string;
  caller: string;
  method: string;
  serial?: string;
  clientCluster?: string;
  message?: string;
}

export async function audit(httpAddr: string, query = ''): Promise<AuditRow[]> {
  const { body } = await getJson<{ certificates: AuditRow[] }>(httpAddr, `/v1/certificates?limit=1000${query}`);
  return body.certificates;
}

export function sanUris(pem: string): string[] {
  return (new X509Certificate(pem).subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
}

export interface ServeProcess {
  child: ChildProcess;
  /** The "listening" line `meshca serve` prints on stdout. */
  ready: Promise<{ grpc: string; http: string; rootFingerprint: string; createdRoot: boolean }>;
  stderr: () => string;
  /** Resolves with the exit code once the process has ended. */
  exited: Promise<number>;
  stop(): Promise<number>;
}

/**
 * `meshca serve` with the benchmark and test switches (MESHCA_AUDIT, MESHCA_FAILPOINT_*), which
 * bin/meshca.js does not read.
 */
export const SERVE_WITH_SWITCHES = join(REPO_ROOT, 'dist/bench/serve.js');

/** Starts `node bin/meshca.js serve ...args` as a child, the way an operator would (or `entry` instead of bin/meshca.js). */
export function spawnServe(args: string[], env: Record<string, string> = {}, entry = MESHCA_BIN): ServeProcess {
  const e: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete e.MESHCA_HOME;
  if (!('MESHCA_KEY_PASSPHRASE' in env)) delete e.MESHCA_KEY_PASSPHRASE;
  const child = spawn(process.execPath, [entry, 'serve', ...args], { cwd: REPO_ROOT, env: e, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number>((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  const ready = new Promise<{ grpc: string; http: string; rootFingerprint: string; createdRoot: boolean }>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)));
    });
    void exited.then((code) => reject(new Error(`meshca serve exited with ${code} before listening: ${err}`)));
  });
  ready.catch(() => {});
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void exited.then(() => clearTimeout(timer));
  return {
    child,
    ready,
    stderr: () => err,
    exited,
    stop: () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
