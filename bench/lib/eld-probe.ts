/**
 * Loaded with --import into every process of `meshca serve` by bench/cpu.ts when ELD=1: records
 * how late the event loop runs a 1 ms timer (perf_hooks.monitorEventLoopDelay), from the last
 * SIGUSR2 (cpu.ts sends it when its measured window starts) until the process exits, and writes
 * the percentiles to MESHCA_BENCH_ELD_DIR/<pid>.json. A request that arrives while the loop is
 * late waits at least that long, so this shows where a tail latency comes from.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.MESHCA_BENCH_ELD_DIR;
if (dir) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  process.on('SIGUSR2', () => h.reset());
  process.on('exit', () => {
    // The histogram holds the timer's whole interval; the delay is what exceeds the 1 ms.
    const ms = (ns: number) => +Math.max(0, ns / 1e6 - 1).toFixed(2);
    const out = {
      pid: process.pid,
      samples: h.count,
      p50: ms(h.percentile(50)),
      p99: ms(h.percentile(99)),
      p999: ms(h.percentile(99.9)),
      max: ms(h.max),
    };
    writeFileSync(join(dir, `${process.pid}.json`), JSON.stringify(out));
  });
}
