import type { ParsedCsr } from '../pki/csr.js';
import { normalizeIssuerRef, type CertificateRequest } from '../resources/certmanager.js';
import { APPROVAL_POLICY } from '../resources/kinds.js';
import type { ApprovalPolicy, DenyRule } from '../resources/meshca.js';
import type { ResourceStore } from '../resources/store.js';

export type ApprovalDecision = { approved: true; reason: string; message: string } | { approved: false; reason: string; message: string };

/** cert-manager's built-in approver wording. */
export const APPROVED: ApprovalDecision = {
  approved: true,
  reason: 'meshca.io',
  message: 'Certificate request has been approved by meshca.io',
};

function globMatch(pattern: string, value: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return re.test(value);
}

function anyMatch(patterns: string[] | undefined, values: string[]): boolean {
  if (!patterns) return true;
  return values.some((v) => patterns.some((p) => globMatch(p, v)));
}

/** A rule matches when every field it sets matches; a rule that sets nothing matches everything. */
export function ruleMatches(rule: DenyRule, cr: CertificateRequest, csr: ParsedCsr): boolean {
  if (rule.namespaces && !rule.namespaces.includes(cr.metadata.namespace ?? '')) return false;
  if (rule.issuerRefs) {
    const r = normalizeIssuerRef(cr.spec.issuerRef);
    const hit = rule.issuerRefs.some((x) => {
      const n = normalizeIssuerRef(x);
      return n.name === r.name && n.kind === r.kind && n.group === r.group;
    });
    if (!hit) return false;
  }
  const cn = /(?:^|, )CN = ([^,]+)/.exec(csr.subject)?.[1];
  if (rule.commonNames && !anyMatch(rule.commonNames, cn ? [cn] : [])) return false;
  if (rule.dnsNames && !anyMatch(rule.dnsNames, csr.sans.dnsNames)) return false;
  if (rule.uris && !anyMatch(rule.uris, csr.sans.uris)) return false;
  if (rule.isCA !== undefined && rule.isCA !== (cr.spec.isCA ?? false)) return false;
  return true;
}

/**
 * The approval policy: every request is approved unless an ApprovalPolicy deny rule matches it.
 * The decision names the policy and rule so that a Denied request says what to change.
 */
export async function decideApproval(store: ResourceStore, cr: CertificateRequest, csr: ParsedCsr): Promise<ApprovalDecision> {
  const policies = await store.list<ApprovalPolicy>(APPROVAL_POLICY);
  for (const p of policies) {
    const rules = p.spec.deny ?? [];
    for (let i = 0; i < rules.length; i++) {
      if (ruleMatches(rules[i], cr, csr)) {
        const why = rules[i].message ? `: ${rules[i].message}` : '';
        return { approved: false, reason: 'policy.meshca.io', message: `Denied by ApprovalPolicy ${p.metadata.name} rule ${i + 1}${why}` };
      }
    }
  }
  return APPROVED;
}
