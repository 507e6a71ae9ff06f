import { writeSync } from 'node:fs';

export type LogFormat = 'json' | 'text';
export const LOG_FORMATS = ['json', 'text'] as const;

/** The format asked for, else text for a person at a terminal and JSON for a collector. */
export function resolveLogFormat(asked: string | undefined, stderrIsTty = process.stderr.isTTY === true): LogFormat {
  if (asked === undefined) return stderrIsTty ? 'text' : 'json';
  if (asked === 'json' || asked === 'text') return asked;
  throw new Error(`--log-format must be json or text, got "${asked}"`);
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
// Said once per line by the time and level columns, or the same on every line.
const OMIT = new Set(['level', 'time', 'msg', 'name', 'pid', 'hostname']);

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  const err = v as { message?: unknown; stack?: unknown } | null;
  // A serialized error: its message is what a reader needs; JSON keeps the stack.
  if (typeof err === 'object' && err !== null && typeof err.message === 'string' && typeof err.stack === 'string') {
    return JSON.stringify(err.message);
  }
  return JSON.stringify(v) ?? String(v);
}

/** One pino JSON record as `2026-12-06T03:00:00.000Z INFO message key=value ...`. */
export function formatTextLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const time = typeof rec.time === 'number' ? new Date(rec.time).toISOString() : new Date().toISOString();
  const level = LEVELS[rec.level as number] ?? String(rec.level);
  const fields = Object.entries(rec)
    .filter(([k, v]) => !OMIT.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${value(v)}`);
  return `${[time, level, String(rec.msg ?? ''), ...fields].filter((s) => s !== '').join(' ')}\n`;
}

/** A synchronous pino destination on stderr that writes text lines instead of JSON. */
export function textDestination(fd = 2): { write(chunk: string): void } {
  return { write: (chunk) => void writeSync(fd, formatTextLine(chunk)) };
}
