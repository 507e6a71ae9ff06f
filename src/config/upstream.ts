import { invalid } from '../pki/errors.js';
import type { ServeConfig } from './schema.js';
import { UPSTREAM_BLOCK_ROWS, BLOCK_KEYS } from './upstream-keys.js';

/**
 * The two ways an upstream's settings change shape: a YAML `upstream:` block read into the flat
 * keys (so that one schema validates both spellings), and the flat keys written back into the
 * block that the upstream's own schema and createUpstream take. Both go through the rows of
 * upstream-keys.ts, which also hold the keys' checks.
 */

export { intermediateTtlOf } from './upstream-keys.js';

/** `upstream:` block key -> flat key, for YAML users who prefer the nested form. */
const NESTED: Record<string, string> = {
  type: 'upstream',
  ...Object.fromEntries(Object.entries(UPSTREAM_BLOCK_ROWS).map(([key, r]) => [r.field, key])),
  intermediateTtl: 'intermediateTtl',
  renewBefore: 'renewBefore',
};

/**
 * `upstream: {type: awspca, arn: ..., mode: ra}` in a config file becomes the flat keys, so that one
 * schema validates both spellings; `upstream: awspca` (a string) passes through unchanged.
 */
export function flattenUpstreamBlock(doc: Record<string, unknown>, file: string): Record<string, unknown> {
  const block = doc.upstream;
  if (block === null || typeof block !== 'object' || Array.isArray(block)) return doc;
  const out: Record<string, unknown> = { ...doc };
  delete out.upstream;
  for (const [k, v] of Object.entries(block)) {
    const key = NESTED[k];
    if (!key)
      throw invalid(
        'bad_config',
        `invalid configuration: unknown field "upstream.${k}" (in ${file}); the upstream block takes ${Object.keys(NESTED).join(', ')}`,
      );
    if (key !== 'upstream' && key in doc)
      throw invalid('bad_config', `invalid configuration: "upstream.${k}" and "${key}" are both set in ${file}; keep one`);
    out[key] = v;
  }
  return out;
}

/** The upstream's config block built from the flat serve keys; validated by the upstream's own schema. */
export function upstreamBlock(c: ServeConfig): Record<string, unknown> {
  const block: Record<string, unknown> = { type: c.upstream };
  for (const [key, r] of Object.entries(BLOCK_KEYS)) if (r.upstream === c.upstream) block[r.field] = c[key as keyof ServeConfig];
  return block;
}
