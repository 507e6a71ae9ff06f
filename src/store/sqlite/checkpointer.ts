import { statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { STOP_CHECKPOINTS, type CheckpointWorkerData } from './wal-turn.js';

export interface BackgroundCheckpointOptions {
  /** A checkpoint every this many milliseconds while the thread runs. */
  intervalMs: number;
  /** The thread starts once the WAL file holds this many bytes. */
  startAtWalBytes: number;
  /** It stops, truncating the WAL, after this long without new WAL frames. */
  idleStopMs: number;
}

/** How long a checkpoint waits for a write in progress before it runs beside it. */
const CHECKPOINT_WAITS_MS = 50;

/** How long close() waits for the thread to truncate the WAL and exit before it terminates it. */
const STOP_TIMEOUT_MS = 5000;

/**
 * WAL checkpoints off the serving thread. A checkpoint fsyncs, and SQLite's own runs inside the
 * commit that fills the WAL, stalling the event loop that serves issuance. Here the serving
 * connection never checkpoints (wal_autocheckpoint = 0); checkpoint-worker.ts does, taking turns
 * with the writer (wal-turn.ts). The thread costs an isolate and a connection, so it starts only
 * once the WAL is large and stops when writes stop; a lightly used CA never pays for it.
 */
export class Checkpointer {
  private worker: Worker | undefined;
  private closed = false;

  constructor(
    private readonly db: Database.Database,
    private readonly path: string,
    private readonly turn: Int32Array,
    private readonly o: BackgroundCheckpointOptions,
    private readonly onError: (e: unknown) => void,
  ) {
    this.db.pragma('wal_autocheckpoint = 0');
  }

  running(): boolean {
    return this.worker !== undefined;
  }

  /** Starts the thread if none runs and the WAL has reached startAtWalBytes. */
  startIfDue(): void {
    if (this.worker || this.closed) return;
    let wal: number;
    try {
      wal = statSync(`${this.path}-wal`).size;
    } catch {
      return; // no WAL file yet
    }
    if (wal < this.o.startAtWalBytes) return;
    const workerData: CheckpointWorkerData = {
      path: this.path,
      intervalMs: this.o.intervalMs,
      idleStopMs: this.o.idleStopMs,
      turn: this.turn.buffer as SharedArrayBuffer,
      retryForMs: CHECKPOINT_WAITS_MS,
    };
    const w = new Worker(new URL('./checkpoint-worker.js', import.meta.url), { workerData });
    w.on('message', (m: string) => this.onError(new Error(`WAL checkpoint failed: ${m}`)));
    w.on('error', (e) => this.onError(e));
    w.once('exit', () => {
      if (this.worker === w) this.worker = undefined;
    });
    w.unref();
    this.worker = w;
  }

  /** Leaves the WAL truncated: the thread does it as it stops, or this connection when no thread runs. */
  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    if (!w) {
      try {
        this.db.pragma('wal_checkpoint(TRUNCATE)');
      } catch (e) {
        this.onError(e);
      }
      return;
    }
    let exited = false;
    const exit = new Promise<void>((resolve) => w.once('exit', () => ((exited = true), resolve())));
    // Kept alive while it finishes: an unreferenced worker would let the process exit first.
    w.ref();
    w.postMessage(STOP_CHECKPOINTS);
    await Promise.race([exit, new Promise<void>((r) => setTimeout(r, STOP_TIMEOUT_MS).unref())]);
    if (!exited) await w.terminate();
  }
}
