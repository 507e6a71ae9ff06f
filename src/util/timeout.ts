import { MeshcaError } from '../pki/errors.js';

/** Settles like `p`, or rejects `unavailable` with `message` after `ms`: for API servers that never answer. */
export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new MeshcaError('unavailable', 'kube_timeout', message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
