/** Istio's default: renew at half the certificate's life. */
export const DEFAULT_RENEW_AT = 0.5;
/** Spread renewals by ±10% so that workloads started together do not hit the CA together. */
export const RENEW_JITTER = 0.1;
export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_CAP_MS = 5 * 60_000;
/** Never schedule sooner than this: a certificate that is already due must not make the loop spin. */
export const MIN_RENEW_DELAY_MS = 1_000;

export interface RenewalInput {
  notBefore: Date;
  notAfter: Date;
  /** When the agent received the certificate (ms since epoch). */
  receivedAt: number;
  /** Fraction of the lifetime after which to renew, in (0, 1). */
  renewAt: number;
  /** Uniform in [0, 1); injected so tests are deterministic. */
  random: () => number;
}

/**
 * The instant (ms since epoch) to renew: start + renewAt × lifetime, the offset jittered by ±10%.
 * The lifetime starts at the later of notBefore and the moment of receipt, because CAs back-date
 * notBefore for clock skew (meshca by 60 s): counted from notBefore, a certificate of a few
 * minutes would be "due" on arrival. For ordinary lifetimes the two agree within a minute.
 */
export function renewalTime(i: RenewalInput): number {
  const start = Math.max(i.notBefore.getTime(), Math.min(i.receivedAt, i.notAfter.getTime()));
  const lifetime = i.notAfter.getTime() - start;
  let fraction = i.renewAt * (1 + (2 * i.random() - 1) * RENEW_JITTER);
  // Jitter must never push renewal past expiry (renewAt close to 1).
  if (fraction >= 1) fraction = i.renewAt;
  return start + Math.max(0, lifetime) * fraction;
}

/** Delay from `now` until renewal, never below MIN_RENEW_DELAY_MS. */
export function renewalDelay(i: RenewalInput, now: number): number {
  return Math.max(MIN_RENEW_DELAY_MS, renewalTime(i) - now);
}

/** Delay after the n-th consecutive failure (n ≥ 1): 1 s, 2 s, 4 s, … capped at 5 minutes. */
export function backoffDelay(failures: number, baseMs = BACKOFF_BASE_MS, capMs = BACKOFF_CAP_MS): number {
  const n = Math.max(1, Math.floor(failures));
  // 2^(n-1) overflows to Infinity for large n, which Math.min caps correctly.
  return Math.min(capMs, baseMs * 2 ** (n - 1));
}
