import { KEY_ALGORITHMS } from '../pki/keys.js';
import type { FieldSpec } from './field-spec.js';
import type { ConfigKey } from './schema.js';
import { UPSTREAM_FIELDS } from './upstream-keys.js';
import { STORE_FIELDS } from './store.js';
import { K8S_FIELDS } from './k8s.js';
import { CONTROLLERS_FIELDS } from './controllers.js';
import { ISSUER_SECRET_FIELDS } from './issuer-secret.js';

/** One line per configuration key; `satisfies` makes the compiler check no key lacks a flag and env name. */
export const FIELDS = {
  dir: { kind: 'string', help: 'state directory (default: $MESHCA_HOME or ./.meshca)' },
  grpcAddr: { kind: 'string', help: 'gRPC (Istio CA API) listen address host:port' },
  httpAddr: { kind: 'string', help: 'HTTP (health, metrics, JSON API) listen address host:port' },
  plaintext: { kind: 'bool', help: 'serve gRPC without TLS (local use only)' },
  trustDomain: { kind: 'string', help: 'SPIFFE trust domain of issued identities' },
  trustDomainAliases: { kind: 'list', help: 'other trust domains a CSR may name for the same workload (comma-separated)' },
  cluster: { kind: 'string', help: 'cluster whose intermediate signs workloads' },
  defaultTtl: { kind: 'duration', help: 'TTL when the request gives none' },
  maxTtl: { kind: 'duration', help: 'largest TTL a request may ask for' },
  maxCsrBytes: { kind: 'number', help: 'largest CSR accepted, in bytes' },
  servingSans: { kind: 'list', help: 'DNS names and IPs of the gRPC serving certificate (comma-separated)' },
  servingTtl: { kind: 'duration', help: 'lifetime of the serving certificate (renewed at half life)' },
  audience: { kind: 'list', help: 'accepted token audiences (comma-separated)' },
  localTokens: { kind: 'bool', help: 'accept tokens from the local issuer (`meshca token`)' },
  jwksFile: { kind: 'string', help: 'JWKS file whose keys verify bearer tokens' },
  jwksIssuer: { kind: 'string', help: 'issuer (iss) required of tokens verified with --jwks-file' },
  oidcIssuer: { kind: 'string', help: 'OIDC issuer URL; its discovery document names the JWKS' },
  kubeconfig: { kind: 'string', help: 'kubeconfig for TokenReview and every Kubernetes call ("in-cluster" for the pod service account)' },
  impersonationAllow: { kind: 'list', help: 'SPIFFE IDs allowed to send ImpersonatedIdentity (comma-separated)' },
  rateLimit: { kind: 'number', help: 'certificate requests per second per caller (0: unlimited)' },
  rateBurst: { kind: 'number', help: 'burst per caller above the rate (default: twice the rate)' },
  unauthenticatedAuditRate: {
    kind: 'number',
    help: 'audit rows per second, per process, for refusals of unauthenticated callers; the rest are counted in one summary row a second',
  },
  unauthenticatedAuditBurst: { kind: 'number', help: 'burst above --unauthenticated-audit-rate' },
  logLevel: { kind: 'string', help: 'log level: fatal, error, warn, info, debug, trace, silent' },
  logFormat: { kind: 'string', help: 'log format on stderr: text or json (default: text on a terminal, json otherwise)' },
  keyAlgorithm: { kind: 'string', help: `key algorithm for a root and intermediate created on first start (${KEY_ALGORITHMS.join(', ')})` },
  rootDays: { kind: 'number', help: 'lifetime in days of a root created on first start' },
  intermediateDays: { kind: 'number', help: 'lifetime in days of an intermediate created on first start' },
  auditFlushMs: { kind: 'number', help: 'audit rows are written in one transaction at most this often' },
  auditBatchSize: { kind: 'number', help: 'audit rows per transaction before an early flush' },
  grpcTransport: {
    kind: 'string',
    help: "gRPC transport: h2 (meshca's own HTTP/2 framing, fastest), or node-http2 (the same gRPC rules on node:http2)",
  },
  workers: { kind: 'number', help: 'gRPC worker processes sharing the port (0: one per CPU core; 1: a single process)' },
  ...UPSTREAM_FIELDS,
  ...STORE_FIELDS,
  ...K8S_FIELDS,
  ...CONTROLLERS_FIELDS,
  ...ISSUER_SECRET_FIELDS,
} as const satisfies Record<ConfigKey, FieldSpec>;

export const CONFIG_KEYS = Object.keys(FIELDS) as ConfigKey[];

/** Keys renamed to match the other commands' flags; the old spelling still works in YAML, env and flags. */
export const RENAMED_KEYS: Readonly<Record<string, ConfigKey>> = { pcaApi: 'pcaApiAddr' };

/** grpcAddr -> --grpc-addr */
export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** grpcAddr -> MESHCA_GRPC_ADDR */
export function envName(key: string): string {
  return `MESHCA_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

/**
 * Turns a string from env or a flag into the shape the schema expects. A value that does not
 * convert is passed through unchanged so that the schema's error names the field and the value.
 */
export function coerce(key: ConfigKey, raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  switch (FIELDS[key].kind) {
    case 'bool':
      return TRUE.has(raw.toLowerCase()) ? true : FALSE.has(raw.toLowerCase()) ? false : raw;
    case 'number':
      return /^-?\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : raw;
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    default:
      return raw;
  }
}
