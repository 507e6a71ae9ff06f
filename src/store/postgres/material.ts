import type pg from 'pg';
import { MeshcaError } from '../../pki/errors.js';
import type { AdvisoryFence, CaMaterialKind, CaMaterialRow, LeaderTerm } from '../ca-material.js';
import { MATERIAL_CHANNEL } from './locks.js';

/** SQL for the ca_material and leader_terms tables (migration 2). */

interface Row {
  kind: string;
  cluster: string;
  generation: number;
  cert_pem: string;
  key_pem: string | null;
  chain_pem: string;
  roots_pem: string;
  fingerprint256: string;
  serial: string;
  not_before: string;
  not_after: string;
  created_at: string;
  created_by: string;
}

function fromRow(r: Row): CaMaterialRow {
  const out: CaMaterialRow = {
    kind: r.kind as CaMaterialKind,
    cluster: r.cluster,
    generation: Number(r.generation),
    certPem: r.cert_pem,
    chainPem: r.chain_pem,
    rootsPem: r.roots_pem,
    fingerprint256: r.fingerprint256,
    serial: r.serial,
    notBefore: new Date(Number(r.not_before)),
    notAfter: new Date(Number(r.not_after)),
    createdAt: new Date(Number(r.created_at)),
    createdBy: r.created_by,
  };
  if (r.key_pem !== null) out.keyPem = r.key_pem;
  return out;
}

export async function latestMaterial(db: pg.Pool, kind: CaMaterialKind, cluster: string): Promise<CaMaterialRow | undefined> {
  const r = await db.query<Row>('SELECT * FROM ca_material WHERE kind = $1 AND cluster = $2 ORDER BY generation DESC LIMIT 1', [
    kind,
    cluster,
  ]);
  return r.rows[0] ? fromRow(r.rows[0]) : undefined;
}

export async function currentMaterial(db: pg.Pool): Promise<CaMaterialRow[]> {
  const r = await db.query<Row>('SELECT DISTINCT ON (kind, cluster) * FROM ca_material ORDER BY kind, cluster, generation DESC');
  return r.rows.map(fromRow);
}

export async function materialHistory(db: pg.Pool, kind: CaMaterialKind, cluster?: string): Promise<CaMaterialRow[]> {
  const r =
    cluster === undefined
      ? await db.query<Row>('SELECT * FROM ca_material WHERE kind = $1 ORDER BY cluster, generation', [kind])
      : await db.query<Row>('SELECT * FROM ca_material WHERE kind = $1 AND cluster = $2 ORDER BY generation', [kind, cluster]);
  return r.rows.map(fromRow);
}

/**
 * Checked inside the transaction that writes: a replica whose lock session died (and whose lock
 * another replica may now hold) cannot write. Primary keys back this up for the instant between
 * this check and COMMIT.
 */
export async function assertFence(c: pg.ClientBase, fence: AdvisoryFence, notDone: string): Promise<void> {
  const held = await c.query(
    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int8::oid AND objid = $2::int8::oid AND objsubid = 2 AND pid = $3 AND granted",
    [fence.key1, fence.key2, fence.pid],
  );
  if (held.rowCount === 0) throw new MeshcaError('unavailable', 'not_leader', `this replica no longer holds the leader lock; ${notDone}`);
}

export async function commitMaterial(db: pg.Pool, m: CaMaterialRow, fence?: AdvisoryFence): Promise<boolean> {
  const c = await db.connect();
  try {
    await c.query('BEGIN');
    if (fence) await assertFence(c, fence, `${m.kind} ${m.cluster || ''} generation ${m.generation} not committed`);
    const ins = await c.query(
      `INSERT INTO ca_material (kind, cluster, generation, cert_pem, key_pem, chain_pem, roots_pem, fingerprint256, serial, not_before, not_after, created_at, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (kind, cluster, generation) DO NOTHING`,
      [
        m.kind,
        m.cluster,
        m.generation,
        m.certPem,
        m.keyPem ?? null,
        m.chainPem,
        m.rootsPem,
        m.fingerprint256,
        m.serial,
        m.notBefore.getTime(),
        m.notAfter.getTime(),
        m.createdAt.getTime(),
        m.createdBy,
      ],
    );
    if (ins.rowCount === 0) {
      await c.query('ROLLBACK');
      return false;
    }
    // Delivered to listeners only if the transaction commits.
    await c.query('SELECT pg_notify($1, $2)', [MATERIAL_CHANNEL, `${m.kind}/${m.cluster}/${m.generation}`]);
    await c.query('COMMIT');
    return true;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}

export async function recordLeaderTerm(db: pg.Pool, holder: string, at: Date): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await db.query<{ term: number }>(
        'INSERT INTO leader_terms (term, holder, acquired_at) SELECT COALESCE(MAX(term), 0) + 1, $1, $2 FROM leader_terms RETURNING term',
        [holder, at.getTime()],
      );
      return Number(r.rows[0].term);
    } catch (e) {
      // Two writers computed the same next term (only possible around a failover): take the next.
      if ((e as { code?: string }).code !== '23505' || attempt >= 3) throw e;
    }
  }
}

export async function leaderTerms(db: pg.Pool, limit: number): Promise<LeaderTerm[]> {
  const r = await db.query<{ term: number; holder: string; acquired_at: string }>(
    'SELECT * FROM leader_terms ORDER BY term DESC LIMIT $1',
    [limit],
  );
  return r.rows.map((x) => ({ term: Number(x.term), holder: x.holder, acquiredAt: new Date(Number(x.acquired_at)) }));
}
