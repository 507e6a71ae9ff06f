import { invalid } from './errors.js';

/** A parsed SPIFFE ID (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md). */
export interface SpiffeId {
  trustDomain: string;
  /** Path including the leading slash, or '' for the trust domain ID itself. */
  path: string;
}

const TD_RE = /^[a-z0-9._-]+$/;
const SEG_RE = /^[A-Za-z0-9._-]+$/;
const MAX_LEN = 2048;

export function validateTrustDomain(td: string): void {
  if (td.length === 0) throw invalid('bad_spiffe_id', 'SPIFFE trust domain is empty');
  if (td.length > 255) throw invalid('bad_spiffe_id', `SPIFFE trust domain "${td}" is longer than 255 characters`);
  if (!TD_RE.test(td)) {
    throw invalid('bad_spiffe_id', `SPIFFE trust domain "${td}" has characters other than lowercase letters, digits, ".", "-" and "_"`);
  }
}

export function validatePath(path: string): void {
  if (path === '') return;
  if (!path.startsWith('/')) throw invalid('bad_spiffe_id', `SPIFFE path "${path}" must start with "/"`);
  if (path.endsWith('/')) throw invalid('bad_spiffe_id', `SPIFFE path "${path}" must not end with "/"`);
  for (const seg of path.slice(1).split('/')) {
    if (seg === '') throw invalid('bad_spiffe_id', `SPIFFE path "${path}" has an empty segment`);
    if (seg === '.' || seg === '..') throw invalid('bad_spiffe_id', `SPIFFE path "${path}" has a "${seg}" segment`);
    if (!SEG_RE.test(seg)) {
      throw invalid('bad_spiffe_id', `SPIFFE path segment "${seg}" has characters other than letters, digits, ".", "-" and "_"`);
    }
  }
}

export function parseSpiffeId(id: string): SpiffeId {
  if (id.length > MAX_LEN) throw invalid('bad_spiffe_id', `SPIFFE ID is longer than ${MAX_LEN} bytes`);
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)([?#].*)?$/.exec(id);
  if (!m) throw invalid('bad_spiffe_id', `"${id}" is not a SPIFFE ID (expected spiffe://<trust-domain>/<path>)`);
  if (m[1] !== 'spiffe') throw invalid('bad_spiffe_id', `"${id}" has scheme "${m[1]}"; a SPIFFE ID must use "spiffe" (lowercase)`);
  if (m[4]) throw invalid('bad_spiffe_id', `SPIFFE ID "${id}" must not have a query or fragment`);
  const authority = m[2];
  if (authority.includes('@')) throw invalid('bad_spiffe_id', `SPIFFE ID "${id}" must not have user info`);
  if (authority.includes(':')) throw invalid('bad_spiffe_id', `SPIFFE ID "${id}" must not have a port`);
  validateTrustDomain(authority);
  validatePath(m[3]);
  return { trustDomain: authority, path: m[3] };
}

export function formatSpiffeId(id: SpiffeId): string {
  validateTrustDomain(id.trustDomain);
  validatePath(id.path);
  return `spiffe://${id.trustDomain}${id.path}`;
}

export function isSpiffeId(s: string): boolean {
  try {
    parseSpiffeId(s);
    return true;
  } catch {
    return false;
  }
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A name quoted in a message: bounded and escaped, since it may come from an attacker. */
function quoted(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s);
}

/**
 * Why `namespace` is not a Kubernetes namespace name (a DNS-1123 label), or undefined when it is.
 * Names become SPIFFE path segments: a "/" in one would forge another namespace's identity.
 */
export function namespaceNameProblem(namespace: string): string | undefined {
  if (namespace === '') return 'namespace is empty';
  if (namespace.length > 63 || !DNS1123_LABEL.test(namespace)) {
    return `namespace ${quoted(namespace)} is not a Kubernetes namespace name (at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit)`;
  }
  return undefined;
}

/** Why `name` is not a Kubernetes service account name (a DNS-1123 subdomain), or undefined when it is. */
export function serviceAccountNameProblem(name: string): string | undefined {
  if (name === '') return 'service account is empty';
  if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    return `service account ${quoted(name)} is not a Kubernetes service account name (at most 253 lowercase letters, digits, "-" and ".", each dot-separated part starting and ending with a letter or digit)`;
  }
  return undefined;
}

/**
 * Istio's workload identity: spiffe://<td>/ns/<namespace>/sa/<service-account>. Every identity built
 * from a token's names passes here, so the names are checked here (invalid_argument, reason
 * bad_namespace or bad_service_account); authenticators turn that into unauthenticated.
 */
export function workloadSpiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  const ns = namespaceNameProblem(namespace);
  if (ns) throw invalid('bad_namespace', ns);
  const sa = serviceAccountNameProblem(serviceAccount);
  if (sa) throw invalid('bad_service_account', sa);
  return formatSpiffeId({ trustDomain, path: `/ns/${namespace}/sa/${serviceAccount}` });
}

export interface WorkloadIdentity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

/**
 * Parses an Istio workload SPIFFE ID; undefined when the path is not /ns/<ns>/sa/<sa> with a valid
 * Kubernetes namespace and service account name (an ImpersonatedIdentity or a renewing client
 * certificate must name a workload that could exist).
 */
export function parseWorkloadId(id: string): WorkloadIdentity | undefined {
  const p = parseSpiffeId(id);
  const m = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(p.path);
  if (!m || namespaceNameProblem(m[1]) || serviceAccountNameProblem(m[2])) return undefined;
  return { trustDomain: p.trustDomain, namespace: m[1], serviceAccount: m[2] };
}
