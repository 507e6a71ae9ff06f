import { z } from 'zod';
import { duration, hostPort } from './types.js';
import { DEFAULT_KEY_ALGORITHM, KEY_ALGORITHMS } from '../pki/keys.js';
import { isSpiffeId } from '../pki/spiffe.js';
import { UPSTREAM_SHAPE, refineUpstream } from './upstream-keys.js';
import { STORE_SHAPE, refineStore } from './store.js';
import { K8S_SHAPE, refineK8s } from './k8s.js';
import { CONTROLLERS_SHAPE } from './controllers.js';
import { ISSUER_SECRET_SHAPE, refineIssuerSecret } from './issuer-secret.js';
import { DEFAULT_AUDIT_FLUSH_MS } from '../store/index.js';
import { DEFAULT_UNAUTHENTICATED_AUDIT_BURST, DEFAULT_UNAUTHENTICATED_AUDIT_RATE } from '../ca/audit-limit.js';

const DAY = 86_400;

const trustDomain = z.string().regex(/^[a-z0-9._-]{1,255}$/, 'expected a SPIFFE trust domain: lowercase letters, digits, ".", "-", "_"');

const spiffeId = z
  .string()
  .refine(isSpiffeId, { message: 'expected a SPIFFE ID such as spiffe://cluster.local/ns/istio-system/sa/istiod' });

/**
 * The whole `meshca serve` configuration. Keys are flat on purpose: each maps mechanically to a
 * YAML key, a flag (--kebab-case) and an environment variable (MESHCA_SNAKE_CASE), see fields.ts.
 */
export const ConfigSchema = z
  .strictObject({
    dir: z.string().min(1).optional(),
    grpcAddr: hostPort.default('127.0.0.1:15012'),
    httpAddr: hostPort.default('127.0.0.1:15014'),
    plaintext: z.boolean().default(false),
    trustDomain: trustDomain.default('cluster.local'),
    trustDomainAliases: z.array(trustDomain).default([]),
    cluster: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'expected a DNS label (lowercase letters, digits, "-")')
      .default('default'),
    defaultTtl: duration.default(DAY),
    maxTtl: duration.default(90 * DAY),
    maxCsrBytes: z
      .int()
      .min(512)
      .max(1 << 20)
      .default(32 * 1024),
    servingSans: z.array(z.string().min(1)).min(1).default(['istiod.istio-system.svc', 'localhost', '127.0.0.1']),
    servingTtl: duration.default(DAY),
    audience: z.array(z.string().min(1)).min(1).default(['istio-ca']),
    localTokens: z.boolean().default(true),
    jwksFile: z.string().min(1).optional(),
    jwksIssuer: z.string().min(1).optional(),
    oidcIssuer: z.url().optional(),
    kubeconfig: z.string().min(1).optional(),
    impersonationAllow: z.array(spiffeId).default([]),
    rateLimit: z.number().min(0).default(100),
    rateBurst: z.int().min(1).optional(),
    unauthenticatedAuditRate: z.number().min(0).default(DEFAULT_UNAUTHENTICATED_AUDIT_RATE),
    unauthenticatedAuditBurst: z.int().min(1).default(DEFAULT_UNAUTHENTICATED_AUDIT_BURST),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    // Unset: text on a terminal, JSON otherwise (server/log-text.ts).
    logFormat: z.enum(['json', 'text']).optional(),
    keyAlgorithm: z.enum(KEY_ALGORITHMS).default(DEFAULT_KEY_ALGORITHM),
    rootDays: z.int().min(1).max(36_500).default(3650),
    intermediateDays: z.int().min(1).max(36_500).default(365),
    auditFlushMs: z.int().min(0).max(60_000).default(DEFAULT_AUDIT_FLUSH_MS),
    auditBatchSize: z.int().min(1).max(100_000).default(500),
    workers: z.int().min(0).max(64).default(1),
    // grpc-js is no longer a server transport: it issued certificates for calls whose header fields
    // or message framing are malformed (test/adversarial), and meshca cannot reach inside it to refuse them.
    grpcTransport: z
      .enum(['h2', 'node-http2'], {
        error: (i) =>
          i.input === 'grpc-js'
            ? 'grpc-js is no longer a server transport (it accepts malformed HTTP/2 fields and unary framing); use h2 or node-http2'
            : `expected h2 or node-http2, got ${JSON.stringify(i.input)}`,
      })
      .default('h2'),
    // Upstream CA (local, files, AWS PCA) and the in-process PCA-compatible API: config/upstream-keys.ts.
    ...UPSTREAM_SHAPE,
    // Store (sqlite | postgres shared by replicas) and durable audit: config/store.ts.
    ...STORE_SHAPE,
    // Kubernetes: CSR upstream and signer, leader election, state Secret, Istio Secrets: config/k8s.ts.
    ...K8S_SHAPE,
    // Declarative controllers in the server: config/controllers.ts.
    ...CONTROLLERS_SHAPE,
    // Signing with a cert-manager Certificate's Secret (istio-csr's role): config/issuer-secret.ts.
    ...ISSUER_SECRET_SHAPE,
  })
  .superRefine((c, ctx) => {
    refineUpstream(c, ctx);
    refineStore(c, ctx);
    refineK8s(c, ctx);
    refineIssuerSecret(c, ctx);
    if (c.defaultTtl > c.maxTtl) {
      ctx.addIssue({ code: 'custom', path: ['defaultTtl'], message: `default TTL ${c.defaultTtl}s is above the maximum TTL ${c.maxTtl}s` });
    }
  });

/** What a YAML file, env or flags may give (all optional). */
export type ConfigInput = z.input<typeof ConfigSchema>;
/** The validated configuration with every default filled in; durations are seconds. */
export type ServeConfig = z.output<typeof ConfigSchema> & { dir: string };
export type ConfigKey = keyof ConfigInput;
