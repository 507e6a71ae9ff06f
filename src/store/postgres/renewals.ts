import type pg from 'pg';
import type { AdvisoryFence, PendingRenewal } from '../ca-material.js';
import { assertFence } from './material.js';

/** SQL for upstream_renewals (migration 6): intermediates being obtained from an upstream CA. */

interface Row {
  cluster: string;
  generation: number;
  upstream: string;
  key_pem: string;
  csr_pem: string;
  idempotency_token: string;
  requested_at: string;
  certificate_ref: string | null;
  created_by: string;
}

function fromRow(r: Row): PendingRenewal {
  const out: PendingRenewal = {
    cluster: r.cluster,
    generation: Number(r.generation),
    upstream: r.upstream,
    keyPem: r.key_pem,
    csrPem: r.csr_pem,
    idempotencyToken: r.idempotency_token,
    requestedAt: new Date(Number(r.requested_at)),
    createdBy: r.created_by,
  };
  if (r.certificate_ref !== null) out.certificateRef = r.certificate_ref;
  return out;
}

const SELECT = 'SELECT * FROM upstream_renewals WHERE cluster = $1 AND generation = $2';

export async function pendingRenewal(db: pg.Pool, cluster: string, generation: number): Promise<PendingRenewal | undefined> {
  const r = await db.query<Row>(SELECT, [cluster, generation]);
  return r.rows[0] ? fromRow(r.rows[0]) : undefined;
}

/** Runs fn in a transaction that first checks the fence (when given). */
async function fenced<T>(db: pg.Pool, fence: AdvisoryFence | undefined, what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await db.connect();
  try {
    await c.query('BEGIN');
    if (fence) await assertFence(c, fence, what);
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}

export function beginRenewal(db: pg.Pool, p: PendingRenewal, fence?: AdvisoryFence): Promise<PendingRenewal> {
  return fenced(db, fence, `renewal of generation ${p.generation} not started`, async (c) => {
    // A row left for another upstream (the configuration changed) is replaced: its request can
    // never be finished here. A row for the same upstream is kept, whoever wrote it.
    await c.query(
      `INSERT INTO upstream_renewals (cluster, generation, upstream, key_pem, csr_pem, idempotency_token, requested_at, certificate_ref, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)
       ON CONFLICT (cluster, generation) DO UPDATE SET upstream = EXCLUDED.upstream, key_pem = EXCLUDED.key_pem,
         csr_pem = EXCLUDED.csr_pem, idempotency_token = EXCLUDED.idempotency_token, requested_at = EXCLUDED.requested_at,
         certificate_ref = NULL, created_by = EXCLUDED.created_by
       WHERE upstream_renewals.upstream <> EXCLUDED.upstream`,
      [p.cluster, p.generation, p.upstream, p.keyPem, p.csrPem, p.idempotencyToken, p.requestedAt.getTime(), p.createdBy],
    );
    return fromRow((await c.query<Row>(SELECT, [p.cluster, p.generation])).rows[0]);
  });
}

export function recordRenewalRef(db: pg.Pool, cluster: string, generation: number, ref: string, fence?: AdvisoryFence): Promise<void> {
  return fenced(db, fence, `certificate ${ref} of generation ${generation} not recorded`, async (c) => {
    await c.query('UPDATE upstream_renewals SET certificate_ref = $3 WHERE cluster = $1 AND generation = $2 AND certificate_ref IS NULL', [
      cluster,
      generation,
      ref,
    ]);
  });
}
