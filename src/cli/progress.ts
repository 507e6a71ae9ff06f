import type { Progress } from '../util/progress.js';

function seconds(startedMs: number): string {
  return ((performance.now() - startedMs) / 1000).toFixed(1);
}

function isPromise(v: unknown): v is Promise<unknown> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

/**
 * The one reporter of slow steps, for every command. Two whole lines (start, then end with its
 * duration) rather than a spinner: they read the same on a terminal and in a CI log.
 */
function reporter(start: (what: string) => void, end: (what: string, outcome: string, s: string) => void): Progress {
  return <T>(what: string, run: () => T, o: { announceAfterMs?: number } = {}): T => {
    const started = performance.now();
    let said = false;
    const say = (): void => {
      said = true;
      start(what);
    };
    const finish = (outcome: string): void => {
      if (said) end(what, outcome, seconds(started));
    };
    if (o.announceAfterMs === undefined) say();
    let result: T;
    try {
      result = run();
    } catch (e) {
      finish('failed');
      throw e;
    }
    if (!isPromise(result)) {
      finish('done');
      return result;
    }
    const timer = o.announceAfterMs === undefined ? undefined : setTimeout(say, o.announceAfterMs);
    timer?.unref();
    const settle = (outcome: string): void => {
      clearTimeout(timer);
      finish(outcome);
    };
    return result.then(
      (v) => {
        settle('done');
        return v;
      },
      (e: unknown) => {
        settle('failed');
        throw e;
      },
    ) as T;
  };
}

/** Progress of a command on stderr; stdout stays what the command prints (a table, JSON). */
export function stderrProgress(write: (line: string) => void = (l) => process.stderr.write(l)): Progress {
  return reporter(
    (what) => write(`meshca: ${what} ...\n`),
    (what, outcome, s) => write(`meshca: ${what}: ${outcome} in ${s} s\n`),
  );
}

/** Progress of a server, through its logger (text or JSON as --log-format says). */
export function logProgress(log: { info: (obj: object, msg: string) => void }): Progress {
  return reporter(
    (what) => log.info({}, `${what} ...`),
    (what, outcome, s) => log.info({ seconds: Number(s) }, `${what}: ${outcome}`),
  );
}
