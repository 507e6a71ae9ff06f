/**
 * The audit writer's cost per row on the embedded store, as the primary of `--workers` pays it:
 * rows arrive from the workers as IPC messages of 500 (JSON), are decoded (fromWire), queued and
 * written in batches, with WAL checkpoints on their background thread, and the audit-by-identity
 * pairs folded in bulk (src/store/sqlite/identity-fold.ts). Prints µs per row for each 50,000 rows, so a
 * cost that grows with the table shows, the process's CPU per row on all threads, then the time of
 * audit queries by identity. The per-window figures are wall time, which includes each flush()
 * waiting for a checkpoint to finish (the writer and the checkpoint thread take turns); the CPU
 * figure is the writer's cost.
 *
 *   npx tsc -p . && node dist/bench/audit.js [--rows 300000] [--identities 1000] [--fold-rows 10000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromWire } from '../src/server/audit-relay.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { arg } from './lib/args.js';

const ROWS = arg('rows', 300_000);
const IDENTITIES = arg('identities', 1000);
const FOLD_ROWS = arg('fold-rows', 10_000);
const BATCH = 500;
const WINDOW = 50_000;

const dir = mkdtempSync(join(tmpdir(), 'meshca-audit-bench-'));
const store = openSqliteStore(dir, { foldRows: FOLD_ROWS });
store.checkpointInBackground();
const id = (i: number) => `spiffe://cluster.local/ns/bench/sa/w${(i * 7919) % IDENTITIES}`;
const now = Date.now();
const messages: string[] = [];
for (let b = 0; b < ROWS; b += BATCH) {
  const rows = [];
  for (let i = b; i < Math.min(ROWS, b + BATCH); i++) {
    rows.push([
      now + i,
      'issued',
      'issued',
      id(i),
      id(i),
      'local-token',
      'default',
      null,
      (BigInt(i) * 7919n + 12345678901234567890n).toString(16),
      now - 60_000,
      now + 86_400_000,
      null,
    ]);
  }
  messages.push(JSON.stringify({ cmd: 'meshca-audit', rows }));
}
console.log(
  `audit writer, SQLite: ${ROWS.toLocaleString('en-US')} rows over ${IDENTITIES.toLocaleString('en-US')} identities, ${BATCH} a message, folded every ${FOLD_ROWS.toLocaleString('en-US')}`,
);
const windows: string[] = [];
let written = 0;
let t = process.hrtime.bigint();
const t0 = t;
const cpu0 = process.cpuUsage();
for (const m of messages) {
  const { rows } = JSON.parse(m) as { rows: Parameters<typeof fromWire>[0][] };
  for (const r of rows) store.appendAudit(fromWire(r));
  await store.flush();
  written += rows.length;
  if (written % WINDOW === 0) {
    const now2 = process.hrtime.bigint();
    windows.push((Number(now2 - t) / WINDOW / 1000).toFixed(1));
    t = now2;
  }
}
const total = Number(process.hrtime.bigint() - t0) / ROWS / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(
  `µs per row of wall time on the writing thread (decode, queue, insert, fold, and waiting out checkpoints: flush() takes turns with them), each ${WINDOW.toLocaleString('en-US')} rows: ${windows.join(' ')}; overall ${total.toFixed(1)}`,
);
console.log(`CPU per row, all threads (with the WAL checkpoints): ${((cpu.user + cpu.system) / ROWS).toFixed(1)} µs`);
const q0 = process.hrtime.bigint();
let found = 0;
for (let i = 0; i < 200; i++) found += (await store.queryAudit({ identity: id(i * 13), limit: 100 })).length;
console.log(
  `200 audit queries by identity (limit 100): ${(Number(process.hrtime.bigint() - q0) / 200 / 1e6).toFixed(2)} ms each, ${found.toLocaleString('en-US')} rows`,
);
await store.close();
rmSync(dir, { recursive: true, force: true });
