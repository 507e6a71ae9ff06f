import { systemClock, type Clock } from './clock.js';
import { reconcileAll, type Controllers, type ReconcileReport } from './reconcile.js';

export interface ReconcileLoop {
  /** Asks for a pass as soon as the current one (if any) ends, e.g. after an API write. */
  trigger(): void;
  /** Stops scheduling and waits for a running pass to finish. */
  stop(): Promise<void>;
}

/**
 * The controllers on a timer, for `meshca serve`: a pass now, then at the earliest renewal or
 * retry the last pass reported, but at least every `maxIntervalMs` (so that objects changed by
 * another process, e.g. `meshca apply`, are picked up). Passes never overlap.
 */
export function startReconcileLoop(
  c: Controllers,
  o: {
    clock?: Clock;
    maxIntervalMs?: number;
    onReport?: (r: ReconcileReport) => void;
    onError?: (e: unknown) => void;
    /** Default true: the loop alone does not keep the process alive (the server's sockets do). */
    unref?: boolean;
  } = {},
): ReconcileLoop {
  const clock = o.clock ?? systemClock;
  const maxInterval = o.maxIntervalMs ?? 5 * 60_000;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;

  const schedule = (delay: number): void => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(run, Math.max(0, delay));
    if (o.unref !== false) timer.unref();
  };

  function run(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      let next = maxInterval;
      try {
        const now = clock();
        const report = await reconcileAll(c, { now });
        o.onReport?.(report);
        if (report.nextWakeup) next = Math.min(next, report.nextWakeup.getTime() - now.getTime());
      } catch (e) {
        o.onError?.(e);
      } finally {
        running = undefined;
      }
      if (again) {
        again = false;
        schedule(0);
      } else {
        schedule(next);
      }
    })();
  }

  schedule(0);
  return {
    trigger: () => (running ? (again = true) : schedule(0)),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
