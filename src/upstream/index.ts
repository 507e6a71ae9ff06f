import { z } from 'zod';
import { MeshcaError, invalid } from '../pki/errors.js';
import { awsPcaUpstreamSchema } from './awspca/config.js';
import { filesUpstreamSchema } from './files/config.js';
import { k8sCsrUpstreamSchema } from './k8s-csr/config.js';
import { localUpstreamSchema } from './local/config.js';

export type {
  ResumableIssuer,
  SignIntermediateRequest,
  SignWorkloadRequest,
  Upstream,
  UpstreamChain,
  UpstreamContext,
} from './contract.js';
export { isResumable } from './contract.js';
import type { Upstream, UpstreamContext } from './contract.js';

type Loader = (config: never, ctx: UpstreamContext) => Promise<Upstream>;

interface Registration {
  schema: z.ZodType<{ type: string }>;
  load: Loader;
}

// Implementations are loaded on first use so that, for example, the AWS SDK is only imported
// by processes that talk to AWS; their config schemas are small and always available.
const REGISTRY = new Map<string, Registration>([
  ['local', { schema: localUpstreamSchema, load: async (c, ctx) => (await import('./local/index.js')).createLocalUpstream(c, ctx) }],
  ['files', { schema: filesUpstreamSchema, load: async (c, ctx) => (await import('./files/index.js')).createFilesUpstream(c, ctx) }],
  ['awspca', { schema: awsPcaUpstreamSchema, load: async (c, ctx) => (await import('./awspca/index.js')).createAwsPcaUpstream(c, ctx) }],
  ['k8s-csr', { schema: k8sCsrUpstreamSchema, load: async (c, ctx) => (await import('./k8s-csr/index.js')).createK8sCsrUpstream(c, ctx) }],
]);

/** Adds an upstream type under its name, next to the built-in ones above. */
export function registerUpstream<C extends { type: string }>(
  type: string,
  schema: z.ZodType<C>,
  create: (config: C, ctx: UpstreamContext) => Upstream | Promise<Upstream>,
): void {
  if (REGISTRY.has(type)) throw new MeshcaError('already_exists', 'upstream_registered', `upstream type "${type}" is already registered`);
  REGISTRY.set(type, { schema, load: async (c, ctx) => create(c as C, ctx) });
}

export function upstreamTypes(): string[] {
  return [...REGISTRY.keys()].sort();
}

/** The config schema of one upstream type, for config files that embed an `upstream:` block. */
export function upstreamSchema(type: string): z.ZodType<{ type: string }> | undefined {
  return REGISTRY.get(type)?.schema;
}

export { awsPcaUpstreamSchema, filesUpstreamSchema, k8sCsrUpstreamSchema, localUpstreamSchema };
export type { AwsPcaUpstreamConfig } from './awspca/config.js';
export type { FilesUpstreamConfig } from './files/config.js';
export type { K8sCsrUpstreamConfig } from './k8s-csr/config.js';
export type { LocalUpstreamConfig } from './local/config.js';

/** Validates an `upstream:` config block against its type's schema and builds the upstream. */
export async function createUpstream(config: unknown, ctx: UpstreamContext = {}, where = 'upstream'): Promise<Upstream> {
  const type = (config as { type?: unknown } | null)?.type;
  if (typeof type !== 'string') throw invalid('bad_upstream', `${where}.type is required; one of ${upstreamTypes().join(', ')}`);
  const reg = REGISTRY.get(type);
  if (!reg) throw invalid('bad_upstream', `${where}.type "${type}" is unknown; use one of ${upstreamTypes().join(', ')}`);
  const parsed = reg.schema.safeParse(config);
  if (!parsed.success) throw invalid('bad_upstream', formatZodIssues(parsed.error, where));
  return reg.load(parsed.data as never, ctx);
}

/** "upstream.arn: expected string" lines, one per problem, with the field path spelled out. */
export function formatZodIssues(error: z.ZodError, where: string): string {
  return error.issues
    .map((i) => {
      const path = [where, ...i.path.map(String)].filter((p) => p !== '').join('.');
      if (i.code === 'unrecognized_keys') return i.keys.map((k) => `${path ? `${path}.` : ''}${k}: unknown field`).join('\n');
      return `${path || '(top level)'}: ${i.message}`;
    })
    .join('\n');
}
