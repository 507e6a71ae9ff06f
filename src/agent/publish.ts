import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { MeshcaError } from '../pki/errors.js';
import { writeFilesAtomic, type FileToWrite } from '../util/fs.js';

/** The link every published name points through; swapping it changes all files at one instant. */
export const DATA_LINK = '..data';
const VERSION_RE = /^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.[0-9a-f]{8}$/;
const LINK_TMP_RE = /^\..+\.[0-9a-f]{12}\.link$/;

function readlink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Replaces (or creates) `path` with a symlink to `target` in one rename. */
function linkAtomically(dir: string, name: string, target: string): void {
  const tmp = join(dir, `.${name}.${randomBytes(6).toString('hex')}.link`);
  symlinkSync(target, tmp);
  renameSync(tmp, join(dir, name));
}

/**
 * Publishes a set of files so that they change together, the Kubernetes AtomicWriter layout
 * (what Envoy's watched_directory expects): the files go into a fresh `..<timestamp>` directory,
 * `..data` is re-pointed at it by one rename, and each public name is a symlink through `..data`.
 * Renaming the files one by one instead leaves a window between renames (about a millisecond per
 * rename on ext4) in which a watcher that reacts to the first change reads a new certificate with
 * the old key; here a reader only mixes versions if the single swap lands between its own opens.
 */
export function publishFiles(dir: string, files: FileToWrite[], now: Date = new Date()): void {
  mkdirSync(dir, { recursive: true });
  const stamp = now.toISOString().slice(0, 19).replace(/[-T:]/g, '_');
  const version = `..${stamp}.${randomBytes(4).toString('hex')}`;
  writeFilesAtomic(join(dir, version), files);
  try {
    linkAtomically(dir, DATA_LINK, version);
    for (const f of files) {
      const target = join(DATA_LINK, f.name);
      // Created once; a plain file from an older layout (or another tool) is converted in place.
      if (!isSymlink(join(dir, f.name)) || readlink(join(dir, f.name)) !== target) linkAtomically(dir, f.name, target);
    }
  } catch (e) {
    rmSync(join(dir, version), { recursive: true, force: true });
    throw new MeshcaError('internal', 'write_failed', `cannot publish into ${dir}: ${(e as Error).message}`, { cause: e });
  }
  // Old versions go once nothing points at them (readers holding files open keep their data),
  // with any leftovers of an interrupted run.
  for (const name of readdirSync(dir)) {
    if ((name !== version && VERSION_RE.test(name)) || LINK_TMP_RE.test(name)) rmSync(join(dir, name), { recursive: true, force: true });
  }
}
