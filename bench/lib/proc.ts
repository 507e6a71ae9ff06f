import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

function status(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
}

function kb(s: string | undefined, field: string): number {
  const m = s && new RegExp(`${field}:\\s+(\\d+) kB`).exec(s);
  return m ? Number(m[1]) * 1024 : 0;
}

/** CPU milliseconds (user + system) of a process, 0 once it is gone. */
export function cpuMs(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

/** CPU milliseconds of a set of processes together (those gone count 0). */
export function totalCpuMs(pids: readonly number[]): number {
  return pids.reduce((t, p) => t + cpuMs(p), 0);
}

/** Times the process's main thread (its event loop) went to sleep and was woken, 0 once it is gone. */
export function sleeps(pid: number): number {
  const m = /^voluntary_ctxt_switches:\s+(\d+)/m.exec(status(pid) ?? '');
  return m ? Number(m[1]) : 0;
}

/** The process and its descendants (cluster workers), from /proc. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = status(Number(d));
    const pp = s && /PPid:\s+(\d+)/.exec(s);
    if (pp) children.set(Number(pp[1]), [...(children.get(Number(pp[1])) ?? []), Number(d)]);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

/** Current RSS and peak RSS (VmHWM) summed over the process tree, in bytes. */
export function treeMemory(pid: number): { rss: number; peak: number } {
  let rss = 0;
  let peak = 0;
  for (const p of processTree(pid)) {
    const s = status(p);
    rss += kb(s, 'VmRSS');
    peak += kb(s, 'VmHWM');
  }
  return { rss, peak };
}

/** Open socket descriptors summed over the process tree (an independent count of held connections). */
export function treeSockets(pid: number): number {
  let n = 0;
  for (const p of processTree(pid)) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${p}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${p}/fd/${fd}`).startsWith('socket:')) n++;
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return n;
}
