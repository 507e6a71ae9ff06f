import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { FileSecretSink } from './file-secrets.js';
import type { SecretRef } from './secrets.js';

function versionOf(path: string): number {
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { version?: number }).version ?? 0;
  } catch {
    return 0;
  }
}

/**
 * For readers in another process (`meshca serve` reloading a cluster's cacerts or an issuer's
 * secret): calls `listener` once per completed write of the secret, after every file of it is in
 * place, because the sink rewrites the `.meta.json` marker last. Stat polling (fs.watchFile)
 * rather than fs.watch, because the atomic writes replace files by rename, which inotify-based
 * watches lose track of. Returns a function that stops watching.
 */
export function watchSecret(
  sink: FileSecretSink,
  ref: SecretRef,
  listener: (version: number) => void,
  o: { intervalMs?: number } = {},
): () => void {
  const path = sink.metaPath(ref);
  let last = versionOf(path);
  const onChange = (): void => {
    const v = versionOf(path);
    if (v === last) return;
    last = v;
    listener(v);
  };
  watchFile(path, { interval: o.intervalMs ?? 1000, persistent: false }, onChange);
  return () => unwatchFile(path, onChange);
}
