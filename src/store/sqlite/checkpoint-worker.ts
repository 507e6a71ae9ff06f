/**
 * The WAL checkpoint thread, started by checkpointer.ts: with a connection of its own it runs a
 * PASSIVE checkpoint (which never blocks the writer) every intervalMs, between the writer's
 * commits, and a TRUNCATE one when it stops: when told to, or once the WAL has had no new frames
 * for idleStopMs. Failures go to the parent as messages.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { STOP_CHECKPOINTS, WAL_CHECKPOINTING, releaseWalTurn, takeWalTurn, type CheckpointWorkerData } from './wal-turn.js';

if (!parentPort) throw new Error('checkpoint-worker.js runs only as a worker thread');
const port = parentPort;
const data = workerData as CheckpointWorkerData;
const db = new Database(data.path, { timeout: 5000 });
const turn = new Int32Array(data.turn);

interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

function run(mode: 'PASSIVE' | 'TRUNCATE'): CheckpointResult | undefined {
  try {
    return (db.pragma(`wal_checkpoint(${mode})`) as CheckpointResult[])[0];
  } catch (e) {
    port.postMessage(String((e as Error | undefined)?.message || e));
    return undefined;
  }
}

let lastLog = -1;
let quietSince = Date.now();
let timer: NodeJS.Timeout | undefined;

function stop(): void {
  clearTimeout(timer);
  run('TRUNCATE');
  db.close();
  port.close();
}

function checkpoint(waited: number): void {
  // Between the writer's commits, so that the checkpoint backfills the whole WAL and the next
  // commit starts it over. A writer that keeps the WAL longer than retryForMs (a backlog written
  // in one go) does not hold checkpoints off: then one runs beside it.
  const took = takeWalTurn(turn, WAL_CHECKPOINTING);
  if (!took && waited < data.retryForMs) {
    timer = setTimeout(checkpoint, 1, waited + 1);
    return;
  }
  let r: CheckpointResult | undefined;
  try {
    r = run('PASSIVE');
  } finally {
    if (took) releaseWalTurn(turn);
  }
  if (r && r.log !== lastLog) {
    lastLog = r.log;
    quietSince = Date.now();
  } else if (Date.now() - quietSince >= data.idleStopMs) return stop();
  timer = setTimeout(checkpoint, data.intervalMs, 0);
}

timer = setTimeout(checkpoint, data.intervalMs, 0);
port.on('message', (m) => m === STOP_CHECKPOINTS && stop());
