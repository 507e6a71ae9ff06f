/** Parses 90s, 15m, 24h, 30d, 500ms or a bare number of seconds; undefined when it is not a positive duration. */
export function durationSeconds(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? value : undefined;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!m) return undefined;
  const mult = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
  const seconds = Number(m[1]) * mult;
  return seconds > 0 ? seconds : undefined;
}

/** The shortest exact rendering of a number of seconds: 86400 -> "24h", 7776000 -> "90d", 95 -> "95s". */
export function formatDuration(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}
