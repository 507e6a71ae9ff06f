import { ApiError } from './store.js';

/** The only patch type the double applies; the others get 415, as a server answers a type it does not support. */
export const MERGE_PATCH = 'application/merge-patch+json';

/** JSON merge patch (RFC 7386): objects merge, null deletes a key, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

export function checkPatchType(contentType: string | undefined): void {
  const type = (contentType ?? '').split(';')[0].trim();
  if (type !== MERGE_PATCH)
    throw new ApiError(415, 'UnsupportedMediaType', `the double applies only ${MERGE_PATCH} patches, got "${type || 'no content type'}"`);
}
