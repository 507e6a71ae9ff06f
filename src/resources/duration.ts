/**
 * Go-style durations as Kubernetes manifests write them: "2160h", "1h30m", "720h0m0s", "90s",
 * "1.5h". cert-manager serialises `duration` and `renewBefore` this way, so we read and print
 * the same form. Days are not a Go unit and are refused, as the cert-manager webhook would.
 */
const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Milliseconds in a Go duration string, or undefined when it is not one. */
export function parseGoDuration(value: string): number | undefined {
  const s = value.trim();
  if (s === '0') return 0;
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) total += Number(m[1]) * UNIT_MS[m[2]];
  return Math.round(total);
}

/** Go's time.Duration.String() for whole seconds and above: 2160h0m0s, 1h30m0s, 45m0s, 30s. */
export function formatGoDuration(ms: number): string {
  const neg = ms < 0;
  let rest = Math.abs(Math.round(ms));
  if (rest < 1000) return `${neg ? '-' : ''}${rest === 0 ? '0s' : `${rest}ms`}`;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const sec = rest / 1000;
  const secText = Number.isInteger(sec) ? `${sec}s` : `${sec.toFixed(3).replace(/0+$/, '')}s`;
  const body = h > 0 ? `${h}h${m}m${secText}` : m > 0 ? `${m}m${secText}` : secText;
  return `${neg ? '-' : ''}${body}`;
}

/** kubectl's human age: 5s, 3m, 2h, 4d, 2y; negative spans render with a leading "-". */
export function humanDuration(ms: number): string {
  const neg = ms < 0;
  const s = Math.floor(Math.abs(ms) / 1000);
  let out: string;
  if (s < 120) out = `${s}s`;
  else if (s < 60 * 60 * 2) out = `${Math.floor(s / 60)}m`;
  else if (s < 86_400 * 2) out = `${Math.floor(s / 3600)}h`;
  else if (s < 86_400 * 365 * 2) out = `${Math.floor(s / 86_400)}d`;
  else out = `${Math.floor(s / (86_400 * 365))}y`;
  return neg ? `-${out}` : out;
}
