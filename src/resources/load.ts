import { parseAllDocuments } from 'yaml';
import { invalid } from '../pki/errors.js';
import { validateObject, type ValidatedObject } from './validate.js';

export interface LoadedDocument {
  /** 1-based position in the file, for messages. */
  index: number;
  object: ValidatedObject;
}

/**
 * Parses a multi-document YAML (or JSON) text and validates every document. All problems of all
 * documents are reported together, each as `SOURCE: document N (Kind ns/name): path: message`;
 * nothing is returned unless the whole file is valid, so a bad file changes nothing.
 */
export function loadManifests(text: string, source: string, defaultNamespace = 'default'): LoadedDocument[] {
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  const errors: string[] = [];
  const out: LoadedDocument[] = [];
  const seen = new Map<string, number>();
  let index = 0;
  const items: { index: number; value: unknown }[] = [];
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    index++;
    if (doc.errors.length > 0) {
      const e = doc.errors[0];
      const where = e.linePos?.[0] ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : '';
      errors.push(
        `${source}: document ${index}${where}: YAML syntax error: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:$/, '')}`,
      );
      continue;
    }
    const value = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue; // an empty document, e.g. a trailing "---"
    // kubectl's List wrapper: apply each item.
    if (isList(value)) value.items.forEach((item: unknown) => items.push({ index, value: item }));
    else items.push({ index, value });
  }
  for (const { index: i, value } of items) {
    const r = validateObject(value, defaultNamespace);
    for (const p of r.problems) errors.push(`${source}: document ${i} (${r.label}): ${p.path ? `${p.path}: ` : ''}${p.message}`);
    if (!r.object) continue;
    const o = r.object;
    const meta = o.resource?.metadata ?? o.secret!;
    const key = `${o.kind.kind}/${meta.namespace ?? ''}/${meta.name}`;
    const prev = seen.get(key);
    if (prev !== undefined) {
      errors.push(`${source}: document ${i} (${r.label}): duplicates document ${prev}`);
      continue;
    }
    seen.set(key, i);
    out.push({ index: i, object: o });
  }
  if (errors.length > 0) throw invalid('invalid_manifest', errors.join('\n'));
  if (out.length === 0) throw invalid('empty_manifest', `${source}: no objects to apply`);
  return out;
}

function isList(v: unknown): v is { items: unknown[] } {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return o.apiVersion === 'v1' && o.kind === 'List' && Array.isArray(o.items);
}
