/**
 * The dashboard's audit aggregates as portable SQL, shared by the SQLite and PostgreSQL stores.
 * `p(i)` renders the i-th placeholder (SQLite "?", PostgreSQL "$i"). Integer division of BIGINT
 * times buckets rows in both dialects; every scan is bounded by time so that it uses an index.
 */
import { byCodeUnit } from '../util/order.js';

type Placeholder = (i: number) => string;

export const AUDIT_STATS_SQL = {
  /** $1 = $2 = bucket width in ms, $3 = since (ms). */
  buckets: (p: Placeholder | string) => {
    const q = ph(p);
    // The casts matter for SQLite, which binds JavaScript numbers as REAL (no integer division).
    // Both outcomes are named so that the scan uses the (outcome, time) index: there is no index
    // on time alone (each index costs every issuance SQLite work).
    return `SELECT (time / CAST(${q(1)} AS BIGINT)) * CAST(${q(2)} AS BIGINT) AS start,
              SUM(CASE WHEN outcome = 'issued' THEN 1 ELSE 0 END) AS issued,
              SUM(CASE WHEN outcome = 'refused' THEN 1 ELSE 0 END) AS refused
            FROM audit WHERE outcome IN ('issued', 'refused') AND time >= ${q(3)} GROUP BY start ORDER BY start`;
  },
  /** Issued since $1 (ms), per cluster, with the latest issuance time. */
  issuedPerCluster: (p: Placeholder | string) => {
    const q = ph(p);
    return `SELECT cluster, COUNT(*) AS issued, MAX(time) AS last
            FROM audit WHERE outcome = 'issued' AND time >= ${q(1)} GROUP BY cluster`;
  },
  /** Still valid at $1 (ms), per cluster: reads only live certificates (index on outcome, not_after). */
  validPerCluster: (p: Placeholder | string) => {
    const q = ph(p);
    return `SELECT cluster, COUNT(*) AS valid FROM audit WHERE outcome = 'issued' AND not_after > ${q(1)} GROUP BY cluster`;
  },
  /** $1 = since (ms). */
  reasons: (p: Placeholder | string) => {
    const q = ph(p);
    return `SELECT reason, COUNT(*) AS count FROM audit WHERE outcome = 'refused' AND time >= ${q(1)} GROUP BY reason ORDER BY count DESC, reason`;
  },
  /** $1 = how many. */
  recentRefusals: (p: Placeholder | string) => {
    const q = ph(p);
    return `SELECT * FROM audit WHERE outcome = 'refused' ORDER BY time DESC, id DESC LIMIT ${q(1)}`;
  },
};

/** Joins the two per-cluster counts (drivers return numbers or numeric strings), sorted by cluster. */
export function mergeClusterCounts(
  issued: { cluster: string; issued: number | string; last: number | string | null }[],
  valid: { cluster: string; valid: number | string }[],
): { cluster: string; issued: number; valid: number; lastIssued?: Date }[] {
  const out = new Map<string, { cluster: string; issued: number; valid: number; lastIssued?: Date }>();
  const get = (cluster: string) => out.get(cluster) ?? out.set(cluster, { cluster, issued: 0, valid: 0 }).get(cluster)!;
  for (const r of issued) {
    const c = get(r.cluster);
    c.issued = Number(r.issued);
    if (r.last !== null) c.lastIssued = new Date(Number(r.last));
  }
  for (const r of valid) get(r.cluster).valid = Number(r.valid);
  return [...out.values()].sort((a, b) => byCodeUnit(a.cluster, b.cluster));
}

function ph(p: Placeholder | string): Placeholder {
  return typeof p === 'string' ? () => p : p;
}
