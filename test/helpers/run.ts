import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root, found from this file's compiled place (dist/test/helpers/). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const MESHCA_BIN = fileURLToPath(new URL('../../../bin/meshca.js', import.meta.url));

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Extra environment; MESHCA_HOME and MESHCA_KEY_PASSPHRASE are removed unless given here. */
  env?: Record<string, string | undefined>;
  /** Written to the child's stdin, which is then closed. */
  input?: string | Buffer;
  cwd?: string;
  /** Kill the child after this many milliseconds (default 30 s) so a hung command fails the test. */
  timeoutMs?: number;
}

/** Runs any program to completion; asynchronous so in-process servers keep answering meanwhile. */
export function runProcess(cmd: string, args: string[], o: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.MESHCA_HOME;
    delete env.MESHCA_KEY_PASSPHRASE;
    for (const [k, v] of Object.entries(o.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const child = spawn(cmd, args, { cwd: o.cwd ?? REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin.on('error', () => {
      /* the child may exit before reading its input */
    });
    child.stdin.end(o.input ?? '');
  });
}

/** Runs `node bin/meshca.js ...args`, the way an operator would. */
export function runMeshca(args: string[], o: RunOptions = {}): Promise<RunResult> {
  return runProcess(process.execPath, [MESHCA_BIN, ...args], o);
}

/** Asserts that a meshca command exited 0, showing its output when it did not. */
export function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}
