import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AuditEntry } from '../index.js';
import { DB_FILE_NAME, openSqliteStore } from './index.js';
import { WAL_CHECKPOINTING, WAL_FREE } from './wal-turn.js';

function entry(over: Partial<AuditEntry> = {}): AuditEntry {
  return {
    time: new Date(1_700_000_000_000),
    outcome: 'issued',
    reason: 'issued',
    identity: 'spiffe://cluster.local/ns/a/sa/b',
    caller: 'x',
    method: 'local-token',
    cluster: 'default',
    ...over,
  };
}

/** Bytes in the database's WAL file, 0 when there is none. */
function walSize(dir: string): number {
  try {
    return statSync(join(dir, `${DB_FILE_NAME}-wal`)).size;
  } catch {
    return 0;
  }
}

test('WAL checkpoints run on a worker thread: the serving connection never checkpoints, the WAL stays small, close truncates it', async () => {
  const run = async (background: boolean) => {
    const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
    const s = openSqliteStore(dir, { flushMs: 60_000, batchSize: 100_000 });
    if (background) s.checkpointInBackground(40, { startAtWalBytes: 0 });
    else (s as unknown as { db: { pragma(p: string): unknown } }).db.pragma('wal_autocheckpoint = 0');
    let peak = 0;
    for (let batch = 0; batch < 12; batch++) {
      for (let i = 0; i < 400; i++)
        s.appendAudit(entry({ identity: `spiffe://cluster.local/ns/a/sa/w${batch}-${i}`, serial: `${batch}-${i}` }));
      await s.flush();
      peak = Math.max(peak, walSize(dir));
      await new Promise((r) => setTimeout(r, 120));
    }
    await s.close();
    const after = walSize(dir);
    const db = new (await import('better-sqlite3')).default(join(dir, DB_FILE_NAME), { readonly: true });
    const rows = (db.prepare('SELECT COUNT(*) AS n FROM audit').get() as { n: number }).n;
    db.close();
    return { peak, after, rows };
  };
  const bg = await run(true);
  const none = await run(false);
  assert.equal(bg.rows, 4800);
  assert.equal(none.rows, 4800);
  // Without any checkpoint the WAL holds every batch; with the background checkpointer it is reused.
  assert.ok(bg.peak * 3 < none.peak, `WAL peak ${bg.peak} with background checkpoints vs ${none.peak} without`);
  assert.equal(bg.after, 0, 'TRUNCATE checkpoint on close');
});

test('under steady writes the WAL starts over after each checkpoint instead of growing with the load', async () => {
  // Commits a millisecond apart, as a loaded primary or durable issuance makes them: without turns
  // a commit landed during nearly every checkpoint, no checkpoint backfilled the whole WAL, and the
  // WAL never started over (and SQLite never shrinks it either).
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  const s = openSqliteStore(dir, { flushMs: 60_000, batchSize: 100_000 });
  s.checkpointInBackground(20, { startAtWalBytes: 0 });
  let peak = 0;
  let n = 0;
  for (const until = Date.now() + 1500; Date.now() < until;) {
    for (let i = 0; i < 60; i++, n++)
      s.appendAudit(entry({ identity: `spiffe://cluster.local/ns/a/sa/w${n % 1000}`, serial: `${n}`.padStart(32, '0') }));
    await s.flush();
    peak = Math.max(peak, walSize(dir));
    await new Promise((r) => setTimeout(r, 1));
  }
  await s.close();
  const db = new (await import('better-sqlite3')).default(join(dir, DB_FILE_NAME), { readonly: true });
  const rows = (db.prepare('SELECT COUNT(*) AS n FROM audit').get() as { n: number }).n;
  db.close();
  assert.equal(rows, n);
  assert.ok(n > 10_000, `${n} rows written`);
  // Each checkpoint's worth is one 20 ms interval of this loop, far below the bound.
  assert.ok(peak < 8 << 20, `WAL peaked at ${peak} bytes over ${n} rows`);
  assert.equal(walSize(dir), 0, 'TRUNCATE checkpoint on close');
});

test('while a checkpoint has the WAL, background flushes wait for it and flush() waits at most 200 ms', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  const s = openSqliteStore(dir, { flushMs: 1, batchSize: 100_000 });
  // The checkpoint thread's side of the turn, taken by hand.
  const turn = (s as unknown as { walTurn: Int32Array }).walTurn;
  Atomics.store(turn, 0, WAL_CHECKPOINTING);
  s.appendAudit(entry({ serial: 'held' }));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(s.pendingAudit(), 1, 'the background flush waits for the checkpoint');
  Atomics.store(turn, 0, WAL_FREE);
  for (let i = 0; i < 100 && s.pendingAudit() > 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(s.pendingAudit(), 0, 'and writes once it is done');
  assert.equal(Atomics.load(turn, 0), WAL_FREE, 'the writer gave the turn back');
  // flush() waits too, but a checkpoint that never ends does not hold durable issuance up for long.
  Atomics.store(turn, 0, WAL_CHECKPOINTING);
  s.appendAudit(entry({ serial: 'forced' }));
  const t0 = Date.now();
  await s.flush();
  const waited = Date.now() - t0;
  assert.equal(s.pendingAudit(), 0);
  assert.ok(waited >= 190 && waited < 2000, `flush waited ${waited} ms`);
  assert.equal(Atomics.load(turn, 0), WAL_CHECKPOINTING, 'a write beside the checkpoint leaves its turn alone');
  Atomics.store(turn, 0, WAL_FREE);
  const rows = await s.queryAudit({ limit: 10 });
  assert.deepEqual(rows.map((r) => r.serial).sort(), ['forced', 'held']);
  await s.close();
});

test('the checkpoint thread starts only once the WAL is large, stops (truncating the WAL) when writes stop, and starts again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshca-store-'));
  const s = openSqliteStore(dir, { flushMs: 60_000, batchSize: 100_000 });
  s.checkpointInBackground(30, { startAtWalBytes: 256 << 10, idleStopMs: 200 });
  let written = 0;
  const write = async (n: number, tag: string) => {
    written += n;
    for (let i = 0; i < n; i++) s.appendAudit(entry({ identity: `spiffe://cluster.local/ns/a/sa/${tag}-${i}`, serial: `${tag}-${i}` }));
    await s.flush();
  };
  await write(20, 'small');
  assert.ok(walSize(dir) < 256 << 10, `WAL ${walSize(dir)}`);
  assert.equal(s.checkpointerRunning(), false, 'a small WAL starts no thread');
  let batches = 0;
  while (walSize(dir) < 256 << 10 && batches < 50) await write(400, `big${batches++}`);
  await s.flush();
  assert.equal(s.checkpointerRunning(), true, `started once the WAL reached ${walSize(dir)} bytes`);
  // No more writes: after idleStopMs it checkpoints with TRUNCATE and exits.
  for (let i = 0; i < 100 && s.checkpointerRunning(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(s.checkpointerRunning(), false, 'stopped when idle');
  assert.equal(walSize(dir), 0, 'the WAL was truncated on stop');
  batches = 0;
  while (!s.checkpointerRunning() && batches < 50) await write(400, `again${batches++}`);
  assert.equal(s.checkpointerRunning(), true, 'started again');
  await s.close();
  assert.equal(walSize(dir), 0);
  const db = new (await import('better-sqlite3')).default(join(dir, DB_FILE_NAME), { readonly: true });
  const rows = (db.prepare('SELECT COUNT(*) AS n FROM audit').get() as { n: number }).n;
  db.close();
  assert.equal(rows, written, 'every row written across the thread starting and stopping');
});
