import type { z } from 'zod';
import { SECRET_KEY, SecretSchema } from './core.js';
import { apiVersionOf, kindFor, type KindInfo } from './kinds.js';
import { ObjectMetaSchema, type ResourceInput } from './meta.js';

/** One thing wrong with a manifest, at a field path such as `spec.privateKey.size`. */
export interface FieldProblem {
  path: string;
  message: string;
}

/** `['spec', 'dnsNames', 1]` -> `spec.dnsNames[1]` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

/** zod issues as field problems under `prefix`, with unknown fields named one by one. */
export function zodProblems(error: z.ZodError, prefix: PropertyKey[], unsupported: Record<string, string> = {}): FieldProblem[] {
  const out: FieldProblem[] = [];
  for (const issue of error.issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const topOfSpec = issue.path.length === 0 && prefix.length === 1 && prefix[0] === 'spec';
        out.push({ path: formatPath([...path, key]), message: (topOfSpec && unsupported[key]) || 'unknown field' });
      }
      continue;
    }
    const message = issue.message.replace(/^Invalid (input|option): /, '');
    out.push({ path: formatPath(path), message });
  }
  return out;
}

/** A validated secret from a manifest, data decoded. */
export interface SecretInput {
  namespace: string;
  name: string;
  type?: string;
  data: Record<string, Buffer>;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export type ValidatedObject =
  { kind: KindInfo; resource: ResourceInput; secret?: undefined } | { kind: KindInfo; secret: SecretInput; resource?: undefined };

export interface ValidationResult {
  object?: ValidatedObject;
  problems: FieldProblem[];
  /** "Certificate istio-system/istio-ca", for messages; as much as could be read. */
  label: string;
}

const TOP_LEVEL = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validates one parsed document against meshca's kinds: every problem found, each with its path. */
export function validateObject(raw: unknown, defaultNamespace = 'default'): ValidationResult {
  if (!isRecord(raw))
    return { problems: [{ path: '', message: 'expected a mapping with apiVersion, kind, metadata and spec' }], label: 'object' };
  const problems: FieldProblem[] = [];
  const kindName = typeof raw.kind === 'string' ? raw.kind : undefined;
  const meta = isRecord(raw.metadata) ? raw.metadata : {};
  const label = `${kindName ?? 'object'} ${typeof meta.namespace === 'string' ? `${meta.namespace}/` : ''}${typeof meta.name === 'string' ? meta.name : '(unnamed)'}`;
  if (typeof raw.apiVersion !== 'string') problems.push({ path: 'apiVersion', message: 'required string' });
  if (kindName === undefined) problems.push({ path: 'kind', message: 'required string' });
  if (problems.length > 0) return { problems, label };
  const { info, problem } = kindFor(raw.apiVersion as string, kindName!);
  if (!info) return { problems: [{ path: 'kind', message: problem! }], label };

  const metaResult = ObjectMetaSchema.safeParse(raw.metadata);
  if (!metaResult.success) problems.push(...zodProblems(metaResult.error, ['metadata']));
  const namespace = info.namespaced ? (metaResult.data?.namespace ?? defaultNamespace) : undefined;

  if (!info.spec) return validateSecret(raw, info, metaResult.data, namespace!, problems, label);

  for (const key of Object.keys(raw)) {
    if (!TOP_LEVEL.has(key)) problems.push({ path: key, message: 'unknown field' });
  }
  // A kind whose every spec field is optional may omit spec (`kind: Cluster`).
  const specInput = raw.spec === undefined && info.spec.safeParse({}).success ? {} : raw.spec;
  if (specInput === undefined) problems.push({ path: 'spec', message: 'required' });
  else {
    const specResult = info.spec.safeParse(specInput);
    if (!specResult.success) problems.push(...zodProblems(specResult.error, ['spec'], info.unsupported));
  }
  if (problems.length > 0 || !metaResult.data) return { problems, label };
  const m = metaResult.data;
  const resource: ResourceInput = {
    apiVersion: apiVersionOf(info),
    kind: info.kind,
    metadata: {
      name: m.name,
      ...(namespace ? { namespace } : {}),
      ...(m.labels ? { labels: m.labels } : {}),
      ...(m.annotations ? { annotations: m.annotations } : {}),
    },
    // Stored as written, not as parsed: defaults are applied by controllers, so a stored spec
    // compares equal to the file it came from and a second apply is "unchanged".
    spec: specInput,
  };
  return { object: { kind: info, resource }, problems, label };
}

function validateSecret(
  raw: Record<string, unknown>,
  info: KindInfo,
  meta: z.infer<typeof ObjectMetaSchema> | undefined,
  namespace: string,
  problems: FieldProblem[],
  label: string,
): ValidationResult {
  const r = SecretSchema.safeParse(raw);
  if (!r.success) problems.push(...zodProblems(r.error, []).filter((p) => !p.path.startsWith('metadata')));
  const data: Record<string, Buffer> = {};
  if (r.success) {
    for (const [k, v] of Object.entries(r.data.data ?? {})) data[k] = Buffer.from(v.replace(/\s/g, ''), 'base64');
    for (const [k, v] of Object.entries(r.data.stringData ?? {})) data[k] = Buffer.from(v, 'utf8');
    for (const k of Object.keys(data)) {
      if (!SECRET_KEY.test(k) || k === '.' || k === '..' || k.startsWith('..'))
        problems.push({ path: `data.${k}`, message: 'invalid key name' });
    }
  }
  if (problems.length > 0 || !meta || !r.success) return { problems, label };
  return {
    object: {
      kind: info,
      secret: { namespace, name: meta.name, type: r.data.type, data, labels: meta.labels, annotations: meta.annotations },
    },
    problems,
    label,
  };
}
