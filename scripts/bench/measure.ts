// What the benchmark measures and how: wall time (performance.now), CPU time of the children
// (cutime + cstime of this process in /proc/self/stat: the kernel adds a child's user+sys, and that of
// the children it waited for, when we reap it), own CPU for in-process work (process.cpuUsage), peak RSS
// of a process tree (VmHWM sampled from /proc), and order statistics.
import { readFileSync, readdirSync } from 'node:fs';
import { HELPER_BUNDLE } from '../../runtime/helper/bundle.ts';

/** clock ticks per second of /proc/<pid>/stat times (USER_HZ is 100 on Linux) */
const HZ = 100;

/** user+sys CPU of every child reaped so far, in ms */
export function childCpuMs(): number {
  const st = readFileSync('/proc/self/stat', 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  // fields 16 and 17 (cutime, cstime); f[0] is field 3
  return ((Number(f[13]) + Number(f[14])) * 1000) / HZ;
}

/** user+sys CPU of this process, in ms */
export const ownCpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

export interface Timed<T> {
  value: T;
  wall_ms: number;
  /** children's user+sys, plus this process's own when `own` */
  cpu_ms: number;
}

/** Times fn: wall, and CPU of the children it reaped (plus ours when the work is in-process). */
export async function timed<T>(fn: () => Promise<T>, opts: { own?: boolean } = {}): Promise<Timed<T>> {
  const c0 = childCpuMs();
  const o0 = opts.own ? ownCpuMs() : 0;
  const t0 = performance.now();
  const value = await fn();
  const wall_ms = performance.now() - t0;
  const cpu_ms = childCpuMs() - c0 + (opts.own ? ownCpuMs() - o0 : 0);
  return { value, wall_ms, cpu_ms };
}

// ---- peak RSS of a process tree -------------------------------------------------------------

function children(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim().split(' ')) if (c) out.push(Number(c));
    } catch {
      /* thread gone */
    }
  }
  return out;
}

function status(pid: number): { hwm: number; rss: number; anon: number; file: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0);
    return { hwm: kib('VmHWM'), rss: kib('VmRSS'), anon: kib('RssAnon'), file: kib('RssFile') + kib('RssShmem') };
  } catch {
    return null;
  }
}

function label(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    if (argv.some((a) => a === HELPER_BUNDLE || a.endsWith('scripts/helper.ts'))) return 'helper';
    if (argv.some((a) => a.endsWith('scripts/keeper.ts')) || (argv[1]?.endsWith('scripts/launch.mjs') && argv[2] === 'keeper') || argv[1]?.endsWith('/keeper.mjs')) return 'cli';
    const script = argv.slice(1).find((a) => /\.(ts|mjs|js)$/.test(a) && !a.includes('node_modules'));
    return (script ?? argv[0] ?? '?').split('/').pop()!;
  } catch {
    return '?';
  }
}

/** user+sys CPU of a process (or of one of its threads with `tid`), in ms; null once it is gone */
function cpuOf(pid: number, tid?: number): { ms: number; comm: string } | null {
  try {
    const st = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    // fields 14 and 15 (utime, stime); f[0] is field 3
    return { ms: ((Number(f[11]) + Number(f[12])) * 1000) / HZ, comm };
  } catch {
    return null;
  }
}

export interface RssReport {
  /** peak VmHWM of each kind of process (helper, cli, mariadb-dump, …), MiB */
  peak_mib: Record<string, number>;
  /** the highest sum of VmRSS over the whole tree at one sample, MiB */
  tree_peak_mib: number;
  samples: number;
  /** the helper's VmRSS over time: [seconds since spawn, MiB], one point per second */
  helper_timeline: [number, number][];
  /** the helper's resident memory at its highest sample, split: private (anon: heaps, buffers) and
   *  file-backed (the node binary's and libraries' pages, shared with every node process), MiB */
  helper_split_mib: { rss: number; anon: number; file: number } | null;
  /** CPU seconds of each kind of process, as last sampled (a process's last < intervalMs is missed) */
  cpu_s: Record<string, number>;
  /** CPU seconds of the helper's threads by thread name (main thread, gzip workers, libuv pool, …) */
  helper_threads_cpu_s: Record<string, number>;
}

/** Samples the tree under rootPid every intervalMs until stop(); VmHWM is a high-water mark, so a
 *  process's peak is caught even between samples, as long as it is sampled once before it exits. */
export function sampleTree(rootPid: number, intervalMs = 50, opts: { skipRoot?: boolean } = {}): { stop(): RssReport } {
  const peak = new Map<string, number>();
  let tree = 0;
  let samples = 0;
  const timeline: [number, number][] = [];
  const cpu = new Map<number, { label: string; ms: number }>();
  const threads = new Map<number, { comm: string; ms: number }>();
  let split: { rss: number; anon: number; file: number } | null = null;
  const t0 = performance.now();
  const tick = () => {
    samples++;
    let sum = 0;
    const todo = [rootPid];
    while (todo.length) {
      const pid = todo.pop()!;
      const s = status(pid);
      if (!s) continue;
      // labelled at every sample: a child is its parent's copy until it execs (the keeper launcher is bash first)
      const l = label(pid);
      peak.set(l, Math.max(peak.get(l) ?? 0, s.hwm));
      const c = pid === rootPid && opts.skipRoot ? null : cpuOf(pid);
      // a process that is exiting has no command line left: keep the name it had
      if (c) cpu.set(pid, { label: l === '?' ? (cpu.get(pid)?.label ?? l) : l, ms: c.ms });
      sum += s.rss;
      if (l === 'helper') {
        if (!split || s.rss > split.rss) split = { rss: s.rss, anon: s.anon, file: s.file };
        const t = Math.floor((performance.now() - t0) / 1000);
        const mib = Math.round(s.rss / 1024);
        const last = timeline[timeline.length - 1];
        if (!last || last[0] !== t) timeline.push([t, mib]);
        else last[1] = Math.max(last[1], mib);
        let tids: string[] = [];
        try {
          tids = readdirSync(`/proc/${pid}/task`);
        } catch {
          /* gone */
        }
        for (const tid of tids) {
          const tc = cpuOf(pid, Number(tid));
          if (tc) threads.set(Number(tid), { comm: tid === String(pid) ? 'main' : tc.comm, ms: tc.ms });
        }
      }
      todo.push(...children(pid));
    }
    tree = Math.max(tree, sum);
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;
      const sum = (xs: Iterable<{ key: string; ms: number }>) => {
        const out: Record<string, number> = {};
        for (const x of xs) out[x.key] = (out[x.key] ?? 0) + x.ms;
        for (const k of Object.keys(out)) out[k] = Math.round(out[k] / 10) / 100;
        return out;
      };
      return {
        peak_mib: Object.fromEntries([...peak].map(([k, v]) => [k, mib(v)])),
        tree_peak_mib: mib(tree),
        samples,
        helper_timeline: timeline,
        helper_split_mib: split && { rss: mib(split.rss), anon: mib(split.anon), file: mib(split.file) },
        cpu_s: sum([...cpu.values()].map((x) => ({ key: x.label, ms: x.ms }))),
        helper_threads_cpu_s: sum([...threads.values()].map((x) => ({ key: x.comm, ms: x.ms }))),
      };
    },
  };
}

// ---- statistics -------------------------------------------------------------------------------

export interface Spread {
  n: number;
  median: number;
  min: number;
  max: number;
  q1: number;
  q3: number;
}

export function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function spread(xs: number[]): Spread | null {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 10) / 10;
  return { n: s.length, median: r(quantile(s, 0.5)), min: r(s[0]), max: r(s[s.length - 1]), q1: r(quantile(s, 0.25)), q3: r(quantile(s, 0.75)) };
}
