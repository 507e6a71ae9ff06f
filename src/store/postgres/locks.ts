/**
 * Advisory-lock keys, in PostgreSQL's two-int form (classid, objid) so that pg_locks shows them
 * apart from other applications' locks. The namespace spells "mesh"; it stays below 2^31 so that
 * the int4 argument and pg_locks' oid column agree.
 */
export const LOCK_NAMESPACE = 0x6d657368;

export const LOCKS = {
  migrate: 1,
  /** Held for as long as a replica leads (src/leader/pg-advisory.ts). */
  leader: 2,
  bootstrap: 3,
} as const;

/** LISTEN/NOTIFY channel on which a replica announces committed CA material. */
export const MATERIAL_CHANNEL = 'meshca_ca_material';
