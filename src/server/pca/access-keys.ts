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

/** "ID:SECRET" as given to --pca-access-key. */
export function parseAccessKey(spec: string, where = '--pca-access-key'): AccessKey {
  const i = spec.indexOf(':');
  const id = i < 0 ? '' : spec.slice(0, i).trim();
  const secret = i < 0 ? '' : spec.slice(i + 1).trim();
  if (!/^[A-Z0-9]{4,128}$/i.test(id) || secret.length < 8) {
    throw invalid('bad_access_key', `${where} must be ACCESS_KEY_ID:SECRET_ACCESS_KEY (id alphanumeric, secret at least 8 characters)`);
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
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l, i) => parseAccessKey(l, `${path} line ${i + 1}`));
}

export function accessKeysFrom(o: { pcaAccessKey?: string[]; pcaAccessKeysFile?: string }): AccessKey[] {
  const keys = (o.pcaAccessKey ?? []).map((k) => parseAccessKey(k));
  if (o.pcaAccessKeysFile) keys.push(...readAccessKeysFile(o.pcaAccessKeysFile));
  return keys;
}

/** The flag spelling (general-purpose, short-lived) as the API reports it. */
export function usageModeOf(v: string): UsageMode {
  return v === 'short-lived' ? 'SHORT_LIVED_CERTIFICATE' : 'GENERAL_PURPOSE';
}
