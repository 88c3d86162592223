// The runner under load: the real runner process on the bench sandbox, 50 SSE clients following a
// backup started through the API, and /api/health and the backup list polled at a steady rate while it
// runs — against the same polling on an idle runner. Latencies are seen from outside the runner, as a
// browser would see them.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { dirname, join } from 'node:path';
import { PROJECT_ROOT } from '../cli/framework.ts';
import { sandboxToken } from '../sandbox-kit/index.ts';
import { childCpuMs, quantile } from './measure.ts';
import { setEncryption, type BenchCtx, type Sample } from './contenders.ts';

export interface ResponsivenessOptions {
  /** SSE clients following the backup's events (the UI's job panel, one per open tab) */
  clients?: number;
  /** pause between two requests of one route, ms (each route polls sequentially) */
  intervalMs?: number;
  /** how long the idle baseline polls, ms */
  baselineMs?: number;
}

export interface Latency {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** answers other than 2xx (health may say 503 while phpBorg's units are stopped) */
  non_2xx: number;
}

/** the target: both routes' p99 during a backup */
export const RESPONSIVE_P99_MS = 100;

const ROUTES = { health: '/api/health', list: '/api/phpborg-backup/list' } as const;
type Route = keyof typeof ROUTES;

function latency(ms: number[], non2xx: number): Latency {
  const s = [...ms].sort((a, b) => a - b);
  const q = (x: number) => (s.length ? Math.round(quantile(s, x) * 10) / 10 : NaN);
  return { n: s.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: q(1), non_2xx: non2xx };
}

interface Http {
  get(path: string): Promise<number>;
  post(path: string, body: unknown): Promise<{ status: number; json: unknown }>;
  /** follows an SSE stream to its end; resolves with the number of events and the `end` event's data */
  sse(path: string): Promise<{ events: number; end: string | null }>;
  close(): void;
}

function http(base: string, token: string): Http {
  // one connection per poller, kept alive: the timing is the runner's answer, not a TCP handshake
  const agent = new Agent({ keepAlive: true });
  const auth = { authorization: `Bearer ${token}` };
  const call = (method: string, path: string, body?: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(new URL(path, base), { method, agent, headers: { ...auth, ...(body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (t: string) => (text += t));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  return {
    get: async (path) => (await call('GET', path)).status,
    async post(path, body) {
      const r = await call('POST', path, JSON.stringify(body));
      return { status: r.status, json: JSON.parse(r.text) as unknown };
    },
    sse: (path) =>
      new Promise((resolve, reject) => {
        // its own connection: a stream holds it for the whole job
        const req = request(new URL(path, base), { headers: { ...auth, accept: 'text/event-stream' } }, (res) => {
          if (res.statusCode !== 200) reject(new Error(`${path}: HTTP ${res.statusCode}`));
          let buf = '';
          let events = 0;
          let end: string | null = null;
          res.setEncoding('utf8').on('data', (t: string) => {
            buf += t;
            let i: number;
            while ((i = buf.indexOf('\n\n')) >= 0) {
              const block = buf.slice(0, i);
              buf = buf.slice(i + 2);
              if (!/^data:/m.test(block)) continue;
              events++;
              if (/^event: end$/m.test(block)) end = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
            }
          });
          res.on('end', () => resolve({ events, end }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      }),
    close: () => agent.destroy(),
  };
}

/** Polls each route sequentially, `intervalMs` apart, until `until` settles; latencies per route. */
async function poll(h: Http, intervalMs: number, until: Promise<unknown>): Promise<Record<Route, Latency>> {
  let done = false;
  void until.finally(() => (done = true)).catch(() => {});
  const one = async (path: string): Promise<Latency> => {
    const ms: number[] = [];
    let bad = 0;
    while (!done) {
      const t0 = performance.now();
      const status = await h.get(path);
      ms.push(performance.now() - t0);
      if (status < 200 || status > 299) bad++;
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    return latency(ms, bad);
  };
  const [health, list] = await Promise.all([one(ROUTES.health), one(ROUTES.list)]);
  return { health, list };
}

/** user+sys CPU of one process itself (not its children), ms */
function processCpuMs(pid: number): number {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  // fields 14 and 15 (utime, stime) in clock ticks of 10 ms; f[0] is field 3
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** The runner as `npm start` runs it, on a free port; resolves once it listens. */
function startRunner(configPath: string): Promise<{ child: ChildProcess; url: string }> {
  // the runner as npm start runs it: its bundle, through the launcher
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'scripts', 'launch.mjs'), 'runner', '--config', configPath], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, KEEPER_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (t: string) => (err = (err + t).slice(-4000)));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (t: string) => {
      out += t;
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.on('exit', (code) => reject(new Error(`the runner exited (${code}) before listening: ${err.trim().split('\n').slice(-5).join(' | ')}`)));
    child.on('error', reject);
  });
}

async function stopRunner(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/**
 * One sample: the idle baseline, then an encrypted backup started through the API with `clients` SSE
 * clients following it, both routes polled all along. wall_ms is the backup's (POST to the `end`
 * event); extra holds the percentiles per route, idle and during the backup.
 */
export async function responsiveness(c: BenchCtx, o: ResponsivenessOptions = {}): Promise<Sample> {
  const clients = o.clients ?? 50;
  const intervalMs = o.intervalMs ?? 50;
  const baselineMs = o.baselineMs ?? 5000;
  await setEncryption(c, true);
  const token = await sandboxToken(dirname(c.configPath));
  const c0 = childCpuMs();
  const { child, url } = await startRunner(c.configPath);
  const h = http(url, token);
  let s: Sample;
  try {
    // the first answers warm the runner's code paths and connections up
    for (const p of Object.values(ROUTES)) await h.get(p);
    const i0 = processCpuMs(child.pid!);
    const idle = await poll(h, intervalMs, new Promise((r) => setTimeout(r, baselineMs)));
    const idle_runner_cpu_ms = processCpuMs(child.pid!) - i0;

    const r0 = processCpuMs(child.pid!);
    const t0 = performance.now();
    const started = await h.post('/api/phpborg-backup/create', { notes: 'bench responsiveness' });
    const jobId = (started.json as { job_id?: string }).job_id;
    if (started.status !== 202 || !jobId) throw new Error(`starting the backup: HTTP ${started.status} ${JSON.stringify(started.json)}`);
    const streams = Array.from({ length: clients }, () => h.sse(`/api/jobs/${encodeURIComponent(jobId)}/events`));
    const all = Promise.all(streams);
    const during = await poll(h, intervalMs, all);
    const ends = await all;
    const wall_ms = performance.now() - t0;
    const runner_cpu_ms = processCpuMs(child.pid!) - r0;
    const job = JSON.parse(ends[0].end ?? 'null') as { status?: string; started_at?: string; finished_at?: string; error?: unknown } | null;
    if (job?.status !== 'succeeded') throw new Error(`the backup did not succeed: ${JSON.stringify(job)}`);
    const job_ms = job.started_at && job.finished_at ? Date.parse(job.finished_at) - Date.parse(job.started_at) : undefined;
    const p99 = Math.max(during.health.p99, during.list.p99);
    s = {
      wall_ms,
      cpu_ms: 0,
      job_ms,
      extra: {
        clients,
        interval_ms: intervalMs,
        // the runner's own work during the backup (the events it relays, the routes it answers)
        runner_cpu_ms,
        idle_runner_cpu_ms,
        idle_ms: baselineMs,
        sse_events: ends.reduce((n, e) => n + e.events, 0),
        idle,
        during_backup: during,
        worst_p99_ms: p99,
        target_p99_ms: RESPONSIVE_P99_MS,
        met: p99 <= RESPONSIVE_P99_MS,
      },
    };
  } finally {
    h.close();
    await stopRunner(child);
  }
  // the runner's CPU and its helper's are ours once it is reaped: the whole run, baseline included
  return { ...s, cpu_ms: childCpuMs() - c0 };
}
