/** Controllers never read the wall clock: a pass gets its time from a Clock, so tests and `--at` can move it. */
export type Clock = () => Date;

export const systemClock: Clock = () => new Date();

/** A clock fixed at one instant, for `meshca reconcile --at` and tests. */
export function fixedClock(at: Date): Clock {
  return () => new Date(at.getTime());
}

/** A clock tests can move forward. */
export function manualClock(start: Date): Clock & { advance(ms: number): void; set(at: Date): void } {
  let t = start.getTime();
  const c = (() => new Date(t)) as Clock & { advance(ms: number): void; set(at: Date): void };
  c.advance = (ms) => {
    t += ms;
  };
  c.set = (at) => {
    t = at.getTime();
  };
  return c;
}
