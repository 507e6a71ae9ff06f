import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/fs.js';

/** One issued certificate as the PCA-compatible API keeps it. */
export interface StoredCertificate {
  certificateArn: string;
  caArn: string;
  certificatePem: string;
  chainPem: string;
  /** Epoch ms: GetCertificate answers RequestInProgressException before this. */
  readyAt: number;
  issuedAt: number;
}

export interface StoredToken {
  certificateArn: string;
  /** Epoch ms of the first use; the token is honoured for 5 minutes from then. */
  createdAt: number;
  /** SHA-256 of the request that used it, so the same token cannot fetch a certificate for another key. */
  requestHash: string;
}

function hash(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function readJson<T>(path: string): T | undefined {
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    // A half-written file cannot happen (writes are atomic); anything else unreadable is treated as absent.
    return undefined;
  }
}

/**
 * Files under <state>/pca/: certificates/<ca-id>/<cert-id>.json and idempotency/<hash>.json.
 * Persisted so that a restarted server still answers GetCertificate and honours tokens.
 */
export class PcaStore {
  constructor(readonly dir: string) {}

  private certPath(caId: string, certId: string): string {
    return join(this.dir, 'certificates', caId, `${certId}.json`);
  }

  private tokenPath(caArn: string, token: string): string {
    return join(this.dir, 'idempotency', `${hash(`${caArn}\n${token}`)}.json`);
  }

  saveCertificate(caId: string, certId: string, c: StoredCertificate): void {
    writeFileAtomic(this.certPath(caId, certId), JSON.stringify(c, null, 1));
  }

  getCertificate(caId: string, certId: string): StoredCertificate | undefined {
    return readJson<StoredCertificate>(this.certPath(caId, certId));
  }

  getToken(caArn: string, token: string): StoredToken | undefined {
    return readJson<StoredToken>(this.tokenPath(caArn, token));
  }

  saveToken(caArn: string, token: string, t: StoredToken): void {
    writeFileAtomic(this.tokenPath(caArn, token), JSON.stringify(t));
  }

  /** Drops tokens older than maxAgeMs: they no longer mean anything, and would pile up forever. */
  pruneTokens(now: number, maxAgeMs: number): number {
    const dir = join(this.dir, 'idempotency');
    if (!existsSync(dir)) return 0;
    let removed = 0;
    for (const name of readdirSync(dir)) {
      const t = readJson<StoredToken>(join(dir, name));
      if (!t || now - t.createdAt >= maxAgeMs) {
        rmSync(join(dir, name), { force: true });
        removed++;
      }
    }
    return removed;
  }
}

export function requestHash(parts: unknown[]): string {
  return hash(JSON.stringify(parts));
}
