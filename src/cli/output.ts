import { Option, type Command } from 'commander';
import { stringify } from 'yaml';
import { invalid } from '../pki/errors.js';

/** The formats every read command accepts; `get` adds `name`. */
export const OUTPUT_FORMATS = ['table', 'wide', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number] | 'name';

/** Adds `-o, --output FORMAT` (table by default) so every read command shares one convention. */
export function withOutput(cmd: Command, extra: readonly string[] = []): Command {
  const formats = [...OUTPUT_FORMATS, ...extra];
  return cmd.addOption(
    new Option('-o, --output <format>', `output format: ${formats.join(', ')}`)
      .argParser((value: string) => {
        if (!formats.includes(value)) throw invalid('bad_output', `-o ${value}: use ${formats.join(', ')}`);
        return value;
      })
      .default('table'),
  );
}

/** True for the formats that print a data structure rather than text for people. */
export function isStructured(format: string | undefined): format is 'json' | 'yaml' {
  return format === 'json' || format === 'yaml';
}

/** Prints a document as JSON or YAML; both carry the same structure. */
export function writeStructured(format: 'json' | 'yaml', doc: unknown): void {
  process.stdout.write(format === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc, { lineWidth: 0 }));
}

/**
 * Prints `doc` as JSON/YAML, or the text `render(wide)` gives for table/wide; the one place read
 * commands choose between them.
 */
export function emit(format: string | undefined, doc: unknown, render: (wide: boolean) => string): void {
  if (isStructured(format)) writeStructured(format, doc);
  else process.stdout.write(render(format === 'wide'));
}

/** Aligned columns, kubectl style: the last column is not padded. */
export function table(rows: Record<string, string>[], headers: string[]): string {
  const widths = headers.map((h) => Math.max(h.length, ...rows.map((r) => (r[h] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map((r) => line(headers.map((h) => r[h] ?? '')))].join('\n') + '\n';
}
