/** How durations, dates and counts read on the page. */

const UNITS: [string, number][] = [
  ['y', 31536000],
  ['d', 86400],
  ['h', 3600],
  ['m', 60],
  ['s', 1],
];
export function fmtDur(sec: number): string {
  const a = Math.abs(Math.round(sec));
  for (let i = 0; i < UNITS.length; i++) {
    const n = Math.floor(a / UNITS[i][1]);
    if (n > 0 || i === UNITS.length - 1) {
      let out = n + UNITS[i][0];
      if (i + 1 < UNITS.length) {
        const m = Math.floor((a - n * UNITS[i][1]) / UNITS[i + 1][1]);
        if (m > 0) out += ' ' + m + UNITS[i + 1][0];
      }
      return out;
    }
  }
  return '0s';
}
export const rel = (sec: number): string => (sec >= 0 ? 'in ' + fmtDur(sec) : fmtDur(-sec) + ' ago');
export const relExpiry = (sec: number): string => (sec >= 0 ? 'expires in ' + fmtDur(sec) : 'expired ' + fmtDur(-sec) + ' ago');
export const num = (n: number): string => Number(n).toLocaleString('en-US');
export const date = (iso: string): string => new Date(iso).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
export const secondsFrom = (iso: string, nowIso: string): number => (Date.parse(iso) - Date.parse(nowIso)) / 1000;
