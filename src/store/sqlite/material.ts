import type Database from 'better-sqlite3';
import type { TokenKeyRecord } from '../index.js';

/** CA metadata (ca_meta) and the local token issuer's signing keys (token_keys). */

export function getMeta(db: Database.Database, key: string): string | undefined {
  return (db.prepare('SELECT value FROM ca_meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
}

export function setMeta(db: Database.Database, key: string, value: string): void {
  db.prepare(
    'INSERT INTO ca_meta (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
  ).run(key, value, Date.now());
}

export function listTokenKeys(db: Database.Database): TokenKeyRecord[] {
  const rows = db.prepare('SELECT kid, alg, private_key_pem, created_at FROM token_keys ORDER BY created_at DESC, kid').all() as {
    kid: string;
    alg: string;
    private_key_pem: string;
    created_at: number;
  }[];
  return rows.map((r) => ({ kid: r.kid, alg: r.alg, privateKeyPem: r.private_key_pem, createdAt: new Date(r.created_at) }));
}

export function addTokenKey(db: Database.Database, k: TokenKeyRecord): void {
  db.prepare('INSERT INTO token_keys (kid, alg, private_key_pem, created_at) VALUES (?, ?, ?, ?)').run(
    k.kid,
    k.alg,
    k.privateKeyPem,
    k.createdAt.getTime(),
  );
}
