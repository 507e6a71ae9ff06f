/**
 * CA material kept in the database (the PostgreSQL store), so that replicas which share no state
 * directory share one root and one intermediate per cluster. Rows are never updated: a renewal
 * commits the next generation, and (kind, cluster, generation) is unique, which is the fence that
 * keeps two replicas from both committing a renewal.
 */
export type CaMaterialKind = 'root' | 'intermediate';

export interface CaMaterialRow {
  kind: CaMaterialKind;
  /** '' for a root. */
  cluster: string;
  /** 1 for the first; each renewal commits the next. */
  generation: number;
  certPem: string;
  /** PKCS#8 PEM, encrypted when a key passphrase is set; absent for a root imported without its key. */
  keyPem?: string;
  /** Istio's cert-chain.pem: the certificate, then any intermediates, root last. */
  chainPem: string;
  /** Istio's root-cert.pem: every trusted root. */
  rootsPem: string;
  fingerprint256: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  createdAt: Date;
  /** The replica that committed it. */
  createdBy: string;
}

/** Proof of leadership checked inside the committing transaction: our lock session still holds the advisory lock. */
export interface AdvisoryFence {
  key1: number;
  key2: number;
  /** Backend pid of the session holding the lock. */
  pid: number;
}

export interface LeaderTerm {
  term: number;
  holder: string;
  acquiredAt: Date;
}

export interface CaMaterialRows {
  /** The newest generation of a kind and cluster. */
  latestMaterial(kind: CaMaterialKind, cluster: string): Promise<CaMaterialRow | undefined>;
  /** The newest generation of every (kind, cluster). */
  currentMaterial(): Promise<CaMaterialRow[]>;
  /** Every generation of a kind (oldest first), for audits and tests. */
  materialHistory(kind: CaMaterialKind, cluster?: string): Promise<CaMaterialRow[]>;
  /**
   * Commits one generation. Returns false, writing nothing, when that generation exists already
   * (another replica committed it first). With a fence, throws `not_leader` unless the fence's
   * session still holds the lock at commit time. Other replicas are told (LISTEN/NOTIFY).
   */
  commitMaterial(row: CaMaterialRow, fence?: AdvisoryFence): Promise<boolean>;
  /** Runs fn while holding the cluster-wide bootstrap lock (first start of several replicas at once). */
  withBootstrapLock<T>(fn: () => Promise<T>): Promise<T>;
  /** Calls back when any replica commits material; returns the unsubscribe function. */
  watchMaterial(cb: (kind: CaMaterialKind, cluster: string, generation: number) => void): Promise<() => Promise<void>>;
  recordLeaderTerm(holder: string, at: Date): Promise<number>;
  leaderTerms(limit: number): Promise<LeaderTerm[]>;
}

export function hasCaMaterial(s: object): s is CaMaterialRows {
  return typeof (s as Partial<CaMaterialRows>).commitMaterial === 'function';
}

/**
 * An intermediate being obtained from an upstream CA for one (cluster, generation), written before
 * the upstream is asked, so that a leader that dies half-way leaves enough for the next one to
 * finish the same request instead of asking for a second certificate.
 */
export interface PendingRenewal {
  cluster: string;
  generation: number;
  /** The upstream asked (an AWS PCA CA ARN). */
  upstream: string;
  /** PKCS#8 PEM of the new intermediate's key, encrypted when a key passphrase is set. */
  keyPem: string;
  csrPem: string;
  /** Sent with every request for this certificate; the upstream answers a repeat with the first certificate. */
  idempotencyToken: string;
  /** When the request was first built: its validity is computed from this, so a repeat is identical. */
  requestedAt: Date;
  /** The upstream's name for the issued certificate (a certificate ARN), once it answered. */
  certificateRef?: string;
  createdBy: string;
}

export interface UpstreamRenewals {
  pendingRenewal(cluster: string, generation: number): Promise<PendingRenewal | undefined>;
  /**
   * Records a pending renewal unless one for the same upstream exists, and returns the one in force
   * (the earlier one when it exists). With a fence, only while the fence's session holds the lock.
   */
  beginRenewal(p: PendingRenewal, fence?: AdvisoryFence): Promise<PendingRenewal>;
  /** Records the upstream's certificate reference of a pending renewal (once). */
  recordRenewalRef(cluster: string, generation: number, ref: string, fence?: AdvisoryFence): Promise<void>;
}
