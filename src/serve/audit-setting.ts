import { MeshcaError } from '../pki/errors.js';
import type { Store } from '../store/index.js';
import { overrideStore } from '../store/override.js';

/**
 * MESHCA_AUDIT=off turns the issuance audit off, so that the benchmark can measure what the audit
 * costs. Only the benchmark's serve entry (bench/serve.ts) reads it and passes it to startServer;
 * `meshca serve` itself always audits. Because it changes what an operator can later prove, a
 * server without the audit warns at every start and /v1/ca reports it.
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
