/**
 * The uncertainty of "1 - mean(a) / mean(b)" from a few runs each way, for the benchmark's A/B
 * figures (the audit's cost): Welch's unequal-variance t, with the ratio's variance by the delta
 * method. Small samples of a noisy machine, so the interval is the point of it, not the digits.
 */

export interface Summary {
  n: number;
  mean: number;
  /** Sample standard deviation (n - 1). */
  sd: number;
}

export function summarize(xs: readonly number[]): Summary {
  const n = xs.length;
  const mean = xs.reduce((t, x) => t + x, 0) / n;
  const sd = n > 1 ? Math.sqrt(xs.reduce((t, x) => t + (x - mean) ** 2, 0) / (n - 1)) : NaN;
  return { n, mean, sd };
}

/** Two-sided 97.5% quantiles of Student's t for 1-30 degrees of freedom. */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086,
  2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** The t quantile for a 95% interval; a fractional df (Welch) rounds down, which widens it. */
export function t95(df: number): number {
  if (!(df >= 1)) return NaN;
  const k = Math.floor(df);
  return k <= T975.length ? T975[k - 1] : 1.96;
}

export interface LossEstimate {
  /** 100 * (1 - mean(a) / mean(b)). */
  percent: number;
  /** Half-width of the 95% interval, in percentage points; NaN with fewer than two runs a side. */
  ci95: number;
  /** Welch–Satterthwaite degrees of freedom. */
  df: number;
}

/** How much lower a's mean is than b's, in per cent of b's, with a 95% interval. */
export function relativeLoss(a: readonly number[], b: readonly number[]): LossEstimate {
  const sa = summarize(a);
  const sb = summarize(b);
  const ratio = sa.mean / sb.mean;
  const va = (sa.sd * sa.sd) / sa.n; // variance of each mean
  const vb = (sb.sd * sb.sd) / sb.n;
  // Delta method: Var(ma/mb) ≈ ratio² (Var(ma)/ma² + Var(mb)/mb²).
  const relA = va / (sa.mean * sa.mean);
  const relB = vb / (sb.mean * sb.mean);
  const se = ratio * Math.sqrt(relA + relB);
  if (relA + relB === 0) return { percent: 100 * (1 - ratio), ci95: 0, df: Infinity }; // no spread at all
  // Welch–Satterthwaite on the same relative variances.
  const df = (relA + relB) ** 2 / ((relA * relA) / (sa.n - 1) + (relB * relB) / (sb.n - 1));
  return { percent: 100 * (1 - ratio), ci95: 100 * t95(df) * se, df };
}

/**
 * How much lower a is than b, run by run, when each a_k and b_k were measured together (the two
 * servers of the benchmark's paired audit runs share the same seconds of the same machine): the mean
 * of 100 * (1 - a_k / b_k) with a one-sample t interval over the pairs. Whatever the machine does
 * during a pair moves both of its figures, so it cancels in the ratio instead of widening the
 * interval as it does between separate runs.
 */
export function pairedLoss(a: readonly number[], b: readonly number[]): LossEstimate {
  if (a.length !== b.length || a.length === 0)
    throw new Error(`pairedLoss needs as many a as b figures, at least one (got ${a.length} and ${b.length})`);
  const s = summarize(a.map((x, k) => 100 * (1 - x / b[k])));
  const df = s.n - 1;
  return { percent: s.mean, ci95: s.n > 1 ? (t95(df) * s.sd) / Math.sqrt(s.n) : NaN, df };
}
