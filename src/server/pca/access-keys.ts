import { readFileSync } from 'node:fs';
import { invalid } from '../../pki/errors.js';
import type { UsageMode } from './service.js';

/**
 * Access keys and usage mode as the operator spells them, shared by `meshca pca-api` and
 * `meshca serve --pca-api-addr` so that both read them the same way.
 */

export interface AccessKey {
  id: string;
  secret: string;
}

/** A key every message may show: the documentation's own, accepted by the rules below. */
export const EXAMPLE_ACCESS_KEY = 'AKIDEXAMPLE:wJalrXUtnFEMI';
/** Real AWS secret keys are 40 characters; a floor catches an ID given alone or a truncated paste. */
export const MIN_SECRET_LENGTH = 8;

/** "ID:SECRET" as given to --pca-access-key. The secret itself is never repeated in a message. */
export function parseAccessKey(spec: string, where = '--pca-access-key'): AccessKey {
  const i = spec.indexOf(':');
  const id = i < 0 ? '' : spec.slice(0, i).trim();
  const secret = i < 0 ? '' : spec.slice(i + 1).trim();
  let problem: string | undefined;
  if (i < 0) problem = 'no ":" between the access key id and the secret';
  else if (!/^[A-Z0-9]{4,128}$/i.test(id)) problem = `the access key id (before ":") must be 4 to 128 letters and digits`;
  else if (secret.length < MIN_SECRET_LENGTH)
    problem = `the secret of ${id} is ${secret.length} characters; it must be at least ${MIN_SECRET_LENGTH} (AWS secret keys are 40)`;
  if (problem) {
    const example = where === '--pca-access-key' ? `${where} ${EXAMPLE_ACCESS_KEY}` : `a line ${EXAMPLE_ACCESS_KEY}`;
    throw invalid('bad_access_key', `${where}: ${problem}; the form is ACCESS_KEY_ID:SECRET_ACCESS_KEY, e.g. ${example}`);
  }
  return { id, secret };
}

/** Lines of ID:SECRET; blank lines and # comments skipped. Keeps secrets out of `ps`. */
export function readAccessKeysFile(path: string): AccessKey[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw invalid('bad_flag', `--pca-access-keys-file ${path} cannot be read: ${(e as Error).message}`, e);
  }
  // Numbered before skipping, so that the line named is the file's own.
  return text
    .split('\n')
    .map((l, i) => ({ l: l.trim(), n: i + 1 }))
    .filter(({ l }) => l !== '' && !l.startsWith('#'))
    .map(({ l, n }) => parseAccessKey(l, `--pca-access-keys-file ${path} line ${n}`));
}

export function accessKeysFrom(o: { pcaAccessKey?: string[]; pcaAccessKeysFile?: string }): AccessKey[] {
  const keys = (o.pcaAccessKey ?? []).map((k) => parseAccessKey(k));
  if (o.pcaAccessKeysFile) keys.push(...readAccessKeysFile(o.pcaAccessKeysFile));
  return keys;
}

/** The region in the ARNs and SigV4 scope; one rule so that `--list-arns` names the ARNs the API serves. */
export function pcaRegionOf(flag: string | undefined): string {
  return flag ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
}

/** The flag spelling (general-purpose, short-lived) as the API reports it. */
export function usageModeOf(v: string): UsageMode {
  return v === 'short-lived' ? 'SHORT_LIVED_CERTIFICATE' : 'GENERAL_PURPOSE';
}
