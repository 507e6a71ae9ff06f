import { MeshcaError } from '../pki/errors.js';
import type { Store } from '../store/index.js';
import { overrideStore } from '../store/override.js';

/**
 * MESHCA_AUDIT=off turns the issuance audit off, so that `npm run bench` can measure what the audit
 * costs (the bar: storing must cost under 10% of throughput; Vault's PKI loses about 78%).
 * Like MESHCA_NATIVE=0 it exists for comparison and diagnosis; unlike it, it changes what an
 * operator can later prove, so `serve` warns at every start and /v1/ca reports it.
 */
export type AuditSetting = 'on' | 'off (MESHCA_AUDIT=off)';

export function auditSetting(env: NodeJS.ProcessEnv = process.env): AuditSetting {
  const v = env.MESHCA_AUDIT;
  if (v === undefined || v === '' || v === 'on') return 'on';
  if (v === 'off') return 'off (MESHCA_AUDIT=off)';
  throw new MeshcaError('invalid_argument', 'bad_audit_setting', `MESHCA_AUDIT must be "on" or "off", got "${v}"`);
}

/** The store with appendAudit discarding rows; everything else is the store's own. */
export function withoutAudit(store: Store): Store {
  return overrideStore(store, { appendAudit: () => {} });
}
