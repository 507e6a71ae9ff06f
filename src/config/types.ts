import { z } from 'zod';
import { durationSeconds } from './duration.js';

/** Accepts "24h"-style strings or a number of seconds; the parsed value is always seconds. */
export const duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const s = durationSeconds(v);
  if (s === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected a positive duration such as 90s, 15m, 24h or 30d, got ${JSON.stringify(v)}` });
    return z.NEVER;
  }
  return s;
});

/** host:port with a numeric port; port 0 asks the kernel for a free one (tests read the bound port back). */
export const hostPort = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:15012');
