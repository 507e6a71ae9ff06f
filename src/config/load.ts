import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { invalid } from '../pki/errors.js';
import { CONFIG_KEYS, RENAMED_KEYS, coerce, envName, flagName } from './fields.js';
import { ConfigSchema, type ConfigInput, type ConfigKey, type ServeConfig } from './schema.js';
import { flattenUpstreamBlock } from './upstream.js';

export const CONFIG_FILE_NAME = 'meshca.yaml';

export interface LoadOptions {
  /** Explicit config file (--config); when absent, MESHCA_CONFIG, then <dir>/meshca.yaml if it exists. */
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  /** Values from flags, keyed by config key (commander's camelCase names match). */
  flags?: Partial<Record<ConfigKey, unknown>>;
}

type Source = string;

/** Defaults < meshca.yaml < MESHCA_* environment < flags. Every error names the field and where its value came from. */
export function loadConfig(o: LoadOptions = {}): ServeConfig & { configFile?: string } {
  const env = o.env ?? process.env;
  const flags = o.flags ?? {};
  const merged: Record<string, unknown> = {};
  const sources: Partial<Record<string, Source>> = {};

  const dirHint = (flags.dir as string | undefined) ?? env.MESHCA_DIR ?? env.MESHCA_HOME ?? '.meshca';
  const file =
    o.configFile ?? env.MESHCA_CONFIG ?? (existsSync(join(dirHint, CONFIG_FILE_NAME)) ? join(dirHint, CONFIG_FILE_NAME) : undefined);
  if (file !== undefined) {
    const doc = flattenUpstreamBlock(readConfigFile(file), file);
    foldRenamed(doc, (k) => `"${k}"`, `config file ${file}: `);
    for (const [k, v] of Object.entries(doc)) {
      merged[k] = v;
      sources[k] = file;
    }
  }
  const fromEnv: Record<string, unknown> = {};
  for (const key of [...CONFIG_KEYS, ...Object.keys(RENAMED_KEYS)]) {
    const raw = env[envName(key)];
    if (raw !== undefined && raw !== '') fromEnv[key] = raw;
  }
  const envOld = foldRenamed(fromEnv, envName);
  const flagValues: Record<string, unknown> = { ...flags };
  const flagOld = foldRenamed(flagValues, flagName);
  for (const key of CONFIG_KEYS) {
    if (fromEnv[key] !== undefined) {
      merged[key] = coerce(key, fromEnv[key]);
      sources[key] = `env ${envName(envOld[key] ?? key)}`;
    }
  }
  for (const key of CONFIG_KEYS) {
    if (flagValues[key] !== undefined) {
      merged[key] = coerce(key, flagValues[key]);
      sources[key] = `flag ${flagName(flagOld[key] ?? key)}`;
    }
  }
  const config = validateConfig(merged, sources);
  return { ...config, dir: resolve(config.dir ?? env.MESHCA_HOME ?? '.meshca'), configFile: file };
}

/**
 * Moves a renamed key's value from its old spelling to the new one, in place, and returns which keys
 * came from an old spelling. Both spellings at once is refused: which one was meant is not clear.
 */
function foldRenamed(values: Record<string, unknown>, name: (key: string) => string, where = ''): Record<string, string> {
  const old: Record<string, string> = {};
  for (const [was, key] of Object.entries(RENAMED_KEYS)) {
    if (values[was] === undefined) continue;
    if (values[key] !== undefined)
      throw invalid('bad_config', `${where}${name(was)} is the old name of ${name(key)}; give only ${name(key)}`);
    values[key] = values[was];
    delete values[was];
    old[key] = was;
  }
  return old;
}

/** Validates an in-memory configuration (for startServer); unset keys take their defaults. */
export function resolveConfig(input: ConfigInput & { dir: string }): ServeConfig {
  const c = validateConfig(input, {});
  return { ...c, dir: resolve(input.dir) };
}

function validateConfig(input: Record<string, unknown>, sources: Partial<Record<string, Source>>): z.output<typeof ConfigSchema> {
  const r = ConfigSchema.safeParse(input);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    if (i.code === 'unrecognized_keys') {
      const where = i.keys.map((k) => sources[k]).find(Boolean);
      return `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}${where ? ` (in ${where})` : ''}`;
    }
    const key = String(i.path[0] ?? '');
    const path = i.path.map(String).join('.');
    const from = sources[key] ? ` (from ${sources[key]})` : '';
    return `field "${path}"${from}: ${i.message}`;
  });
  throw invalid('bad_config', `invalid configuration: ${problems.join('; ')}`);
}

function readConfigFile(file: string): Record<string, unknown> {
  if (!existsSync(file)) throw invalid('bad_config', `config file ${file} does not exist`);
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? ` line ${e.linePos[0].line}` : '';
    throw invalid('bad_config', `config file ${file}${where} is not valid YAML: ${(e as Error).message.split('\n')[0]}`, e);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw invalid('bad_config', `config file ${file} must hold a mapping of fields`);
  return doc as Record<string, unknown>;
}
