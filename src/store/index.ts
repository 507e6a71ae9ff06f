/**
 * Persistence behind one small interface. SQLite (src/store/sqlite) is the embedded default and
 * PostgreSQL (src/store/postgres) is shared by replicas; both sit behind the same interface, so every
 * method is async-friendly and the SQL stays portable (no AUTOINCREMENT, times as integer milliseconds).
 */

export type Outcome = 'issued' | 'refused';

/**
 * How long non-durable audit rows may wait before they are written (`--audit-flush-ms`): the SQLite
 * store's batches and, with --workers, each worker's messages to the primary. A process killed with
 * SIGKILL loses at most this window.
 */
export const DEFAULT_AUDIT_FLUSH_MS = 100;

/** One issuance attempt, successful or not. */
export interface AuditEntry {
  time: Date;
  outcome: Outcome;
  /** Machine reason: "issued" or the MeshcaError reason (identity_mismatch, token_expired, ...). */
  reason: string;
  /** The identity requested (CSR SAN) or certified; '' when unknown. */
  identity: string;
  /** Who asked: the authenticated caller identity, or '' when authentication failed. */
  caller: string;
  /** How the caller authenticated: local-token, jwks, oidc, token-review, mtls, or ''. */
  method: string;
  /** Cluster whose intermediate signs. */
  cluster: string;
  /** ClusterID the client announced, when any. */
  clientCluster?: string;
  serial?: string;
  notBefore?: Date;
  notAfter?: Date;
  /** The refusal message (never a token or key). */
  message?: string;
}

export interface AuditRecord extends AuditEntry {
  id: number;
}

export interface AuditQuery {
  identity?: string;
  outcome?: Outcome;
  reason?: string;
  /** Default 100, at most 1000. */
  limit?: number;
}

/** A signing key of the local token issuer; the private key is PKCS#8 PEM, encrypted when a passphrase is set. */
export interface TokenKeyRecord {
  kid: string;
  alg: string;
  privateKeyPem: string;
  createdAt: Date;
}

export interface Store {
  /** Key/value CA metadata (root fingerprint, intermediate fingerprint, creation time, ...). */
  getMeta(key: string): Promise<string | undefined>;
  setMeta(key: string, value: string): Promise<void>;

  /**
   * Queues an audit row without blocking the request; rows are written in batches. Returns at once:
   * the hot path must not wait for the disk. `flush()` and `close()` write everything queued.
   */
  appendAudit(entry: AuditEntry): void;
  flush(): Promise<void>;
  queryAudit(q: AuditQuery): Promise<AuditRecord[]>;

  listTokenKeys(): Promise<TokenKeyRecord[]>;
  addTokenKey(k: TokenKeyRecord): Promise<void>;

  /** Writes every queued row, then closes. No row may be lost on a clean shutdown. */
  close(): Promise<void>;
}

export const META = {
  rootFingerprint: 'root.fingerprint256',
  rootCreatedAt: 'root.created_at',
  intermediatePrefix: 'intermediate.fingerprint256.',
} as const;

// --- Dashboard aggregates. Optional so that test doubles need not implement them. ---

export interface AuditStatsQuery {
  /** Start of the window (inclusive). */
  since: Date;
  /** Bucket width for the rate series. */
  bucketSeconds: number;
  /** Certificates still valid at this time count as "valid". */
  now: Date;
  /** How many recent refusals to return. */
  refusals: number;
}

export interface AuditStats {
  /** Per bucket since `since` (only buckets with rows): start time in ms, issued and refused counts. */
  buckets: { start: number; issued: number; refused: number }[];
  /** Workload certificates per signing cluster: issued since `since`, and still valid at `now`. */
  clusters: { cluster: string; issued: number; valid: number; lastIssued?: Date }[];
  /** Refusal counts by reason inside the window. */
  reasons: { reason: string; count: number }[];
  /** The newest refusals, newest first. */
  recentRefusals: AuditRecord[];
}

export interface StoreWithStats extends Store {
  auditStats(q: AuditStatsQuery): Promise<AuditStats>;
}

export function hasAuditStats(s: Store): s is StoreWithStats {
  return typeof (s as Partial<StoreWithStats>).auditStats === 'function';
}
