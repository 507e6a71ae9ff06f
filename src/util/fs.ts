import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { MeshcaError } from '../pki/errors.js';

/** Mode for private keys and anything holding one. */
export const PRIVATE_MODE = 0o600;
export const PUBLIC_MODE = 0o644;

/**
 * Writes a file atomically: a temporary file in the same directory (created with the final
 * mode, so a key is never readable by others even for a moment), fsync, then rename.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode: number = PUBLIC_MODE): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', mode);
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw new MeshcaError('internal', 'write_failed', `cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}

export interface FileToWrite {
  name: string;
  data: string | Uint8Array;
  mode?: number;
}

/**
 * Writes a set of files so that either all or none appear: every file goes to a temporary
 * name first; only when all are written are they renamed into place. On failure the
 * temporaries are removed and nothing that existed before is touched.
 */
export function writeFilesAtomic(dir: string, files: FileToWrite[]): void {
  mkdirSync(dir, { recursive: true });
  const staged: { tmp: string; final: string }[] = [];
  try {
    for (const f of files) {
      const tmp = join(dir, `.${f.name}.${randomBytes(6).toString('hex')}.tmp`);
      const fd = openSync(tmp, 'wx', f.mode ?? PUBLIC_MODE);
      staged.push({ tmp, final: join(dir, f.name) });
      try {
        writeSync(fd, typeof f.data === 'string' ? Buffer.from(f.data) : f.data);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
  } catch (e) {
    for (const s of staged) rmSync(s.tmp, { force: true });
    throw new MeshcaError('internal', 'write_failed', `cannot write into ${dir}: ${(e as Error).message}`, { cause: e });
  }
  for (const s of staged) renameSync(s.tmp, s.final);
}

export function readTextIfExists(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}
