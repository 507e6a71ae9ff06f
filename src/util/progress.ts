import { keyGenerationIsSlow, type KeyAlgorithm } from '../pki/keys.js';

/**
 * Hears about a step that can take seconds, so that a command says what it waits for instead of
 * sitting silent. The CLI prints it on stderr, servers log it (src/cli/progress.ts); code below
 * the CLI only receives one and does no output itself. `run` may return a promise.
 * With `announceAfterMs`, an asynchronous step is announced only once it has taken that long.
 */
export type Progress = <T>(what: string, run: () => T, o?: { announceAfterMs?: number }) => T;

/** Runs a key generation through `progress` when it is one a person notices (RSA of 3072 bits or more). */
export function generatingKey<T>(progress: Progress | undefined, alg: KeyAlgorithm, purpose: string, run: () => T): T {
  if (!progress || !keyGenerationIsSlow(alg)) return run();
  return progress(`generating ${alg.toUpperCase()} key for ${purpose}`, run);
}
