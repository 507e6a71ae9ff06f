import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { MESHCA_BIN, REPO_ROOT, runProcess, type RunResult } from '../helpers/run.js';

/** A `meshca pca-api` process, its URL and CA ARNs as printed at start, and everything it logged. */
export interface PcaApiProcess {
  url: string;
  arns: string[];
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `meshca pca-api` (port 0) and waits for its "listening on" line. */
export function startPcaApiProcess(args: string[], env: Record<string, string> = {}): Promise<PcaApiProcess> {
  const child = spawn(process.execPath, [MESHCA_BIN, 'pca-api', '--pca-api-addr', '127.0.0.1:0', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`meshca pca-api did not start:\n${out}`));
    }, 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`meshca pca-api exited ${code}:\n${out}`));
    });
    const onData = (): void => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (!m) return;
      // meshca pca-api prints its CA lines before the listening line.
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.removeAllListeners('exit');
      const arns = [...out.matchAll(/^CA (\S+)/gm)].map((x) => x[1]);
      resolve({ url: m[1], arns, child, output: () => out, stop });
    };
    child.stdout!.on('data', onData);
  });
}

/** The AWS CLI to test with: the distribution's /usr/bin/aws (v2) when present, else whatever `aws` is on PATH. */
export function awsCliPath(): string | undefined {
  if (existsSync('/usr/bin/aws')) return '/usr/bin/aws';
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(`${dir}/aws`)) return `${dir}/aws`;
  }
  return undefined;
}

/** An environment that isolates the AWS CLI from the machine's own profiles and metadata service. */
export function awsEnv(home: string, keyId: string, secret: string): Record<string, string | undefined> {
  return {
    AWS_ACCESS_KEY_ID: keyId,
    AWS_SECRET_ACCESS_KEY: secret,
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: `${home}/aws-config`,
    AWS_SHARED_CREDENTIALS_FILE: `${home}/aws-credentials`,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
    AWS_CLI_AUTO_PROMPT: 'off',
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_ENDPOINT_URL: undefined,
  };
}

export function runAws(cli: string, args: string[], env: Record<string, string | undefined>, cwd: string): Promise<RunResult> {
  return runProcess(cli, args, { env, cwd, timeoutMs: 60_000 });
}
