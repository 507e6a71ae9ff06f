import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

/** A fresh directory under the OS temp dir; remove it with `cleanup` (safe to call twice). */
export function tempDir(prefix = 'meshca-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Every file below dir (relative paths, sorted), with its size and mode, for "nothing changed" assertions. */
export function snapshotTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else out.push(`${relative(dir, p)} ${st.size} ${(st.mode & 0o777).toString(8)} ${st.mtimeMs}`);
    }
  };
  walk(dir);
  return out.sort();
}

/** Leftover temporary files from an interrupted atomic write (names ending in .tmp). */
export function tmpFilesBelow(dir: string): string[] {
  return snapshotTree(dir)
    .map((l) => l.split(' ')[0])
    .filter((p) => p.endsWith('.tmp'));
}

/** The permission bits of a file, e.g. 0o600. */
export function fileMode(path: string): number {
  return statSync(path).mode & 0o777;
}
