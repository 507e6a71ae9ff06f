/**
 * The field-table types, in their own module so that each group of keys (upstream, store, k8s,
 * controllers) can declare its table without importing the table that gathers them.
 */

/** How a flag or environment string becomes the value the schema expects. */
export type FieldKind = 'string' | 'bool' | 'number' | 'duration' | 'list';

export interface FieldSpec {
  kind: FieldKind;
  help: string;
}
