import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { MeshcaError } from '../../pki/errors.js';
import { PRIVATE_MODE } from '../../util/fs.js';
import { migrateSqlite } from './migrations.js';

/**
 * Opens the state database in WAL mode and migrates it. The file and its WAL are private: they
 * hold token-issuer keys. A database refused here (unreadable, or migrated by a newer meshca) is
 * closed again before the error is thrown.
 */
export function openDatabase(path: string): Database.Database {
  mkdirSync(dirname(path), { recursive: true });
  // Created 0600 before SQLite creates it with the default mode.
  if (!existsSync(path)) closeSync(openSync(path, 'a', PRIVATE_MODE));
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { timeout: 5000 });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    migrateSqlite(db, `the state database ${path}`);
  } catch (e) {
    db?.close();
    if (e instanceof MeshcaError) throw e;
    throw new MeshcaError('failed_precondition', 'corrupt_state', `the state database ${path} is unreadable: ${(e as Error).message}`, {
      cause: e,
    });
  }
  for (const side of ['-wal', '-shm']) {
    if (existsSync(path + side)) chmodSync(path + side, PRIVATE_MODE);
  }
  return db;
}
