import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { MeshcaError } from '../pki/errors.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One reconciler at a time per state directory (a CLI `apply` and a server's timer must not
 * both issue the same certificate). An O_EXCL lock file holding the owner's pid; a lock left by
 * a dead process is taken over.
 */
export async function acquireLock(path: string, timeoutMs = 30_000): Promise<() => void> {
  mkdirSync(dirname(path), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder: number;
    try {
      holder = Number(readFileSync(path, 'utf8'));
    } catch {
      continue;
    }
    if (!Number.isInteger(holder) || holder <= 0 || !alive(holder)) {
      rmSync(path, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new MeshcaError(
        'unavailable',
        'locked',
        `another meshca process (pid ${holder}) is reconciling this state directory (${path})`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
