/**
 * The JSON of GET /v1/dashboard as this page reads it (DashboardDocument in ../data.ts). Types
 * only: the imports of this file vanish from the emitted scripts, so the page never fetches it.
 */
export type Expiry = 'ok' | 'warn' | 'critical' | 'expired';

export interface CertNode {
  subject: string;
  commonName: string;
  serial: string;
  fingerprint256: string;
  keyAlgorithm: string;
  notAfter: string;
  expiresInSeconds: number;
  lifeLeft: number;
  expiry: Expiry;
}

export interface IntermediateNode extends CertNode {
  cluster: string;
  signing: boolean;
  source: 'state-dir' | 'database' | 'upstream';
  generation: number | null;
  nextRenewal: string | null;
  renewedBy: { kind: 'RootTrustPolicy'; name: string } | null;
  workloads: { valid: number; issuedLastHour: number; lastIssued: string | null };
}

export interface RootNode extends CertNode {
  intermediates: IntermediateNode[];
}

export interface Doc {
  generatedAt: string;
  trustDomain: string;
  cluster: string;
  replica: { id: string; role: string; store: 'sqlite' | 'postgres'; leader: boolean; leaderSince: string | null; auditDurable: boolean };
  leaderTerms: { term: number; holder: string; acquiredAt: string }[];
  hierarchy: { roots: RootNode[]; orphans: IntermediateNode[] };
  soonestCaExpiry: { commonName: string; notAfter: string; expiresInSeconds: number; expiry: Expiry } | null;
  expiredCas: number;
  validWorkloadCertificates: number;
  timeline: { at: string; inSeconds: number; kind: 'expiry' | 'renewal'; what: string; label: string; expiry: Expiry }[];
  rates: {
    buckets: { start: string; issued: number; refused: number }[];
    issued: number;
    refused: number;
    refusalRate: number;
    available: boolean;
  };
  refusalReasons: { reason: string; count: number }[];
  refusals: { time: string; reason: string; identity: string; caller: string; method: string; message: string }[];
  rotation: {
    name: string;
    phase: string;
    phases: string[];
    message?: string;
    history: { phase: string; time: string }[];
    others: number;
  } | null;
  upstreams: { name: string; kind: string; status: string; detail: string }[];
}
