import { pcaErr } from './errors.js';

export interface PcaValidity {
  Type?: unknown;
  Value?: unknown;
}

const DAY = 86_400_000;

function addUtcMonths(d: Date, months: number): Date {
  const r = new Date(d.getTime());
  const day = r.getUTCDate();
  r.setUTCDate(1);
  r.setUTCMonth(r.getUTCMonth() + months);
  // Like a calendar: Jan 31 + 1 month is the last day of February, not March 3.
  const last = new Date(Date.UTC(r.getUTCFullYear(), r.getUTCMonth() + 1, 0)).getUTCDate();
  r.setUTCDate(Math.min(day, last));
  return r;
}

/** END_DATE: YYMMDDHHMMSS (UTCTime, 50..99 => 19YY) or YYYYMMDDHHMMSS (GeneralizedTime). */
export function parseEndDate(value: number, field: string): Date {
  const s = String(value);
  let m: RegExpExecArray | null;
  let year: number;
  if ((m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(s))) {
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if ((m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(s))) {
    year = Number(m[1]);
  } else {
    throw pcaErr.invalidArgs(`${field}.Value ${s} is not a date in YYMMDDHHMMSS or YYYYMMDDHHMMSS form`);
  }
  const [mo, d, h, mi, se] = m.slice(2).map(Number);
  const date = new Date(Date.UTC(year, mo - 1, d, h, mi, se));
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) {
    throw pcaErr.invalidArgs(`${field}.Value ${s} is not a valid date`);
  }
  return date;
}

/** Resolves PCA's Validity {Type, Value} against the issuance time. */
export function resolveValidity(
  v: PcaValidity | undefined,
  now: Date,
  field = 'Validity',
  types = ['DAYS', 'MONTHS', 'YEARS', 'ABSOLUTE', 'END_DATE'],
): Date {
  if (!v || typeof v !== 'object') throw pcaErr.validation(`${field} is required`);
  const { Type: type, Value: value } = v;
  if (typeof type !== 'string' || !types.includes(type)) throw pcaErr.invalidArgs(`${field}.Type must be one of ${types.join(', ')}`);
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw pcaErr.invalidArgs(`${field}.Value must be a positive integer, got ${JSON.stringify(value)}`);
  }
  switch (type) {
    case 'DAYS':
      return new Date(now.getTime() + value * DAY);
    case 'MONTHS':
      return addUtcMonths(now, value);
    case 'YEARS':
      return addUtcMonths(now, value * 12);
    case 'ABSOLUTE':
      return new Date(value * 1000);
    default:
      return parseEndDate(value, field);
  }
}
