import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/**
 * A throwaway PostgreSQL cluster for tests: initdb into a temp dir, listening on 127.0.0.1 on a
 * free port, stopped and deleted at the end. Needs only the Debian `postgresql` package (server
 * binaries in /usr/lib/postgresql/<major>/bin); no service, no configuration. initdb and postgres
 * refuse to run as root, so under root both run as the `postgres` user (setpriv execs in place, so
 * the child we hold is the postmaster itself and a signal reaches it directly).
 */

export interface PgCluster {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  dir: string;
  /** A fresh database in this cluster; returns its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

/** The server binaries directory, or undefined when PostgreSQL is not installed. */
export function postgresBinDir(): string | undefined {
  if (process.env.MESHCA_PG_BIN) return process.env.MESHCA_PG_BIN;
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const majors = readdirSync(base)
      .filter((v) => existsSync(join(base, v, 'bin', 'postgres')))
      .sort((a, b) => Number(b) - Number(a));
    if (majors.length > 0) return join(base, majors[0], 'bin');
  }
  const r = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  const dir = r.status === 0 ? r.stdout.trim() : '';
  return dir && existsSync(join(dir, 'postgres')) ? dir : undefined;
}

const MISSING = 'PostgreSQL server binaries not found: install the Debian package `postgresql` (.ci/run does) or set MESHCA_PG_BIN';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function asPostgresUser(cmd: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [cmd, args];
  return ['setpriv', ['--reuid=postgres', '--regid=postgres', '--clear-groups', '--reset-env', cmd, ...args]];
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

async function waitReady(url: string, child: ChildProcess, log: () => string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`postgres exited with ${child.exitCode}: ${log()}`);
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      return;
    } catch {
      await c.end().catch(() => {});
      if (Date.now() > deadline) throw new Error(`postgres did not accept connections within ${timeoutMs} ms: ${log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export async function startPostgres(): Promise<PgCluster> {
  const bin = postgresBinDir();
  if (!bin) throw new Error(MISSING);
  const dir = mkdtempSync(join(tmpdir(), 'meshca-pg-'));
  const data = join(dir, 'data');
  if (process.getuid?.() === 0)
    chownSync(
      dir,
      Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout),
      Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout),
    );
  const [initCmd, initArgs] = asPostgresUser(join(bin, 'initdb'), [
    '-D',
    data,
    '-A',
    'trust',
    '-U',
    'postgres',
    '-E',
    'UTF8',
    '--no-sync',
    '--locale=C',
  ]);
  const init = spawnSync(initCmd, initArgs, { encoding: 'utf8', cwd: dir });
  if (init.status !== 0) throw new Error(`initdb failed (${init.status}): ${init.stderr || init.error}`);

  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    // fsync off: a test cluster need not survive a power cut; commits are still acknowledged only
    // once the server has them, which is what the audit guarantees rest on.
    const [cmd, args] = asPostgresUser(join(bin, 'postgres'), [
      '-D',
      data,
      '-p',
      String(port),
      '-h',
      '127.0.0.1',
      '-k',
      dir,
      '-c',
      'fsync=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=300',
      '-c',
      'shared_buffers=32MB',
      '-c',
      'log_min_messages=warning',
    ]);
    const child = spawn(cmd, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(child);
    let log = '';
    child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    void exited.then(() => live.delete(child));
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    try {
      await waitReady(url, child, () => log);
    } catch (e) {
      child.kill('SIGKILL');
      await exited;
      if (attempt < 2 && /could not bind|Address already in use/.test(log)) continue;
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    let stopping: Promise<void> | undefined;
    return {
      url,
      port,
      dir,
      async createDatabase(name: string): Promise<string> {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        try {
          await c.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
        } finally {
          await c.end();
        }
        return `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(name)}`;
      },
      stop: () =>
        (stopping ??= (async () => {
          // SIGINT: "fast" shutdown, open sessions are cut off.
          child.kill('SIGINT');
          const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(t);
          rmSync(dir, { recursive: true, force: true });
        })()),
    };
  }
}
