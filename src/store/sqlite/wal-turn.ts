/**
 * The protocol between the connection that writes (audit rows, folds) and the WAL checkpoint
 * thread (checkpoint-worker.ts); both sides import it. They take turns through one Int32Array slot
 * on shared memory: a checkpoint that no commit overlaps backfills the whole WAL, so the next
 * commit starts the WAL over from its first frame. With commits landing during every checkpoint
 * that never happens, and the WAL grows for as long as the load lasts.
 */

/** Nobody has the WAL. */
export const WAL_FREE = 0;
/** The serving connection writes audit rows or folds. */
export const WAL_WRITING = 1;
/** The checkpoint thread copies the WAL back into the database. */
export const WAL_CHECKPOINTING = 2;

/** How soon a background write put off by a running checkpoint is tried again. */
export const WAL_RETRY_MS = 2;

/** The message that tells the checkpoint thread to truncate the WAL, close and exit. */
export const STOP_CHECKPOINTS = 'stop';

/** What the checkpoint thread starts with (its workerData). */
export interface CheckpointWorkerData {
  path: string;
  intervalMs: number;
  /** Exit (truncating the WAL) after this long without new WAL frames. */
  idleStopMs: number;
  /** The turn's memory (newWalTurn().buffer). */
  turn: SharedArrayBuffer;
  /** Attempts, a millisecond apart, to wait for a write in progress before checkpointing beside it. */
  retryForMs: number;
}

export function newWalTurn(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4));
}

/** Takes the turn if nobody has it; true when taken. */
export function takeWalTurn(turn: Int32Array, who: typeof WAL_WRITING | typeof WAL_CHECKPOINTING): boolean {
  return Atomics.compareExchange(turn, 0, WAL_FREE, who) === WAL_FREE;
}

export function releaseWalTurn(turn: Int32Array): void {
  Atomics.store(turn, 0, WAL_FREE);
}

/**
 * The writer's side: runs a write with the WAL's turn and returns true; returns false, without
 * running it, while the checkpoint thread has the turn. A write inside another (a fold started by
 * a flush) runs under the outer one's turn.
 */
export function writeInTurn(turn: Int32Array, write: () => void): boolean {
  if (Atomics.load(turn, 0) === WAL_WRITING) {
    write();
    return true;
  }
  if (!takeWalTurn(turn, WAL_WRITING)) return false;
  try {
    write();
  } finally {
    releaseWalTurn(turn);
  }
  return true;
}
