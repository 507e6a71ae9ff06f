/**
 * The dashboard's audit aggregates as portable SQL, shared by the SQLite and PostgreSQL stores.
 * `p(i)` renders the i-th placeholder (SQLite "?", PostgreSQL "$i"). Integer division of BIGINT
 * times buckets rows in both dialects; every scan is bounded by time so that it uses an index.
 */
type Placeholder = (i: number) => string;

export const AUDIT_STATS_SQL = {
  /** $1 = $2 = bucket width in ms, $3 = since (ms). */
  buckets: (p: Placeholder | string) => {
    const q = ph(p);
    // The casts matter for SQLite, which binds JavaScript numbers as REAL (no integer division).
    return `SELECT (time / CAST(${q(1)} AS BIGINT)) * CAST(${q(2)} AS BIGINT) AS start,
              SUM(CASE WHEN outcome = 'issued' THEN 1 ELSE 0 END) AS issued,
              SUM(CASE WHEN outcome = 'refused' THEN 1 ELSE 0 END) AS refused
            FROM audit WHERE time >= ${q(3)} GROUP BY start ORDER BY start`;
  },
  /** $1 = since, $2 = now, $3 = validSince (ms). */
  clusters: (p: Placeholder | string) => {
    const q = ph(p);
    return `SELECT cluster,
              SUM(CASE WHEN time >= ${q(1)} THEN 1 ELSE 0 END) AS issued,
              SUM(CASE WHEN not_after > ${q(2)} THEN 1 ELSE 0 END) AS valid,
              MAX(time) AS last
            FROM audit WHERE outcome = 'issued' AND time >= ${q(3)} GROUP BY cluster ORDER BY cluster`;
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

function ph(p: Placeholder | string): Placeholder {
  return typeof p === 'string' ? () => p : p;
}
