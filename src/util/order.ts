/**
 * Orders strings by UTF-16 code unit, as `<` does: deterministic on every machine, the order Go's
 * sort gives (kubectl's key order) for ASCII names, and it never touches ICU. `localeCompare`
 * loads ICU's collation data on first use, resident memory in every process.
 */
export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
