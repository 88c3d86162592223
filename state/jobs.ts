// Jobs, their events and the maintenance lock, as rows in the ledger. Shared by the runner and the
// CLI (separate processes): the lock is taken inside an IMMEDIATE transaction, so it holds across them.
import { randomUUID } from 'node:crypto';
import type { Ledger } from './ledger.ts';
import type { HelperEvent } from '../runtime/helper/protocol.ts';

/** Who asked: a phpBorg user (id and name), or the CLI's system user (id null). */
export interface Actor {
  id: number | null;
  name: string;
}

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'rolled_back' | 'interrupted';
export const FINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'rolled_back', 'interrupted'];
export const isFinal = (s: string): boolean => (FINAL_STATUSES as readonly string[]).includes(s);

/** The one lock: a single maintenance operation (backup, restore, update, rollback) at a time. */
export const MAINTENANCE_LOCK = 'maintenance';

export interface JobError {
  code: string;
  message: string;
  step?: string;
  /** whether the live install was changed (absent: not applicable or not known) */
  changed?: boolean;
  details?: unknown;
}

/** A job as the API and the CLI show it. */
export interface JobView {
  id: string;
  type: string;
  status: JobStatus;
  percent: number;
  step: string | null;
  message: string | null;
  /** parameters with secrets redacted */
  params: unknown;
  result: unknown;
  error: JobError | null;
  actor: Actor;
  helper_pid: number | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface JobEventRow {
  seq: number;
  at: string;
  type: HelperEvent['type'];
  step: string | null;
  percent: number | null;
  message: string | null;
  /** the whole event as the helper sent it (for result/error: result or error fields) */
  data: HelperEvent;
}

/** A jobs row as stored: the view's plain columns, JSON columns and the actor split in two. */
interface JobRow extends Pick<JobView, 'id' | 'type' | 'status' | 'percent' | 'step' | 'message' | 'helper_pid' | 'created_at' | 'started_at' | 'finished_at'> {
  params_json: string | null;
  result_json: string | null;
  error_json: string | null;
  actor_id: number | null;
  actor_name: string | null;
}

// every column a JobView shows: not the log (up to 2 MB), which getJob would otherwise copy on every
// read, and an SSE stream reads the job at each event
const JOB_COLUMNS =
  'id, type, status, percent, step, message, params_json, result_json, error_json, actor_id, actor_name, helper_pid, created_at, started_at, finished_at';

const SECRET_KEY = /pass(word|phrase)?$|passphrase|password|secret|token|credential|private|api_?key/i;

/** Copy of a params object with every secret-looking key's value replaced; never stores secrets. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return '[…]';
  if (Array.isArray(value)) return value.map((x) => redact(x, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(value as Record<string, unknown>)) {
      out[k] = SECRET_KEY.test(k) ? (x === null || x === undefined || x === '' ? x : '[redacted]') : redact(x, depth + 1);
    }
    return out;
  }
  return value;
}

const parse = (s: string | null): unknown => (s === null ? null : JSON.parse(s));

function view(r: JobRow): JobView {
  return {
    id: r.id,
    type: r.type,
    status: r.status,
    percent: r.percent,
    step: r.step,
    message: r.message,
    params: parse(r.params_json),
    result: parse(r.result_json),
    error: parse(r.error_json) as JobError | null,
    actor: { id: r.actor_id, name: r.actor_name ?? 'unknown' },
    helper_pid: r.helper_pid,
    created_at: r.created_at,
    started_at: r.started_at,
    finished_at: r.finished_at,
  };
}

export function newJobId(): string {
  return randomUUID();
}

export function getJob(ledger: Ledger, id: string): JobView | undefined {
  const r = ledger.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ?`).get(id) as JobRow | undefined;
  return r && view(r);
}

export function getJobLog(ledger: Ledger, id: string): string | undefined {
  const r = ledger.prepare('SELECT log FROM jobs WHERE id = ?').get(id) as { log: string } | undefined;
  return r?.log;
}

export function listJobs(ledger: Ledger, opts: { limit?: number; type?: string } = {}): JobView[] {
  const limit = Math.min(Math.max(opts.limit ?? 50, 1), 500);
  const rows = (opts.type
    ? ledger.prepare(`SELECT ${JOB_COLUMNS} FROM jobs WHERE type = ? ORDER BY created_at DESC LIMIT ?`).all(opts.type, limit)
    : ledger.prepare(`SELECT ${JOB_COLUMNS} FROM jobs ORDER BY created_at DESC LIMIT ?`).all(limit)) as JobRow[];
  return rows.map(view);
}

/** How many jobs the ledger holds, any status. */
export function countJobs(ledger: Ledger): number {
  return (ledger.prepare('SELECT COUNT(*) AS n FROM jobs').get() as { n: number }).n;
}

/** Whether a process exists (EPERM: it exists but belongs to someone else, e.g. a root helper). */
export function pidAlive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// A job that never got a helper pid is given this long before its lock counts as abandoned.
const QUEUED_GRACE_MS = 60_000;

/**
 * The one liveness rule for jobs: alive while its helper process exists and the job is not over (an
 * interrupted job's helper goes on alone); a job with no helper yet (queued) gets QUEUED_GRACE_MS.
 */
export function jobAlive(j: Pick<JobView, 'status' | 'helper_pid' | 'created_at'>, now = new Date()): boolean {
  // interrupted: the runner stopped, but the helper goes on alone and records its own outcome
  if (j.status === 'interrupted') return pidAlive(j.helper_pid);
  if (isFinal(j.status)) return false;
  if (j.helper_pid) return pidAlive(j.helper_pid);
  return now.getTime() - Date.parse(j.created_at) <= QUEUED_GRACE_MS;
}

/** A lock is stale when its holder is no longer alive (or gone from the ledger). */
function lockIsStale(ledger: Ledger, jobId: string, now: Date): boolean {
  const j = getJob(ledger, jobId);
  return !j || !jobAlive(j, now);
}

/** The maintenance lock row, live or stale. */
function heldLock(ledger: Ledger): { job_id: string } | undefined {
  return ledger.prepare('SELECT job_id FROM locks WHERE name = ?').get(MAINTENANCE_LOCK) as { job_id: string } | undefined;
}

export type CreateJobResult = { ok: true; job: JobView } | { ok: false; runningJobId: string };

/** Inserts a queued job; with `lock`, takes the maintenance lock in the same transaction or refuses. */
export function createJob(
  ledger: Ledger,
  opts: { type: string; params: unknown; actor: Actor; lock: boolean; now?: Date; id?: string },
): CreateJobResult {
  const now = opts.now ?? new Date();
  const id = opts.id ?? newJobId();
  const tx = ledger.transaction((): CreateJobResult => {
    if (opts.lock) {
      const held = heldLock(ledger);
      if (held) {
        if (!lockIsStale(ledger, held.job_id, now)) return { ok: false, runningJobId: held.job_id };
        ledger.prepare('DELETE FROM locks WHERE name = ?').run(MAINTENANCE_LOCK);
      }
    }
    ledger
      .prepare(
        `INSERT INTO jobs (id, type, status, percent, params_json, actor_id, actor_name, created_at)
         VALUES (?, ?, 'queued', 0, ?, ?, ?, ?)`,
      )
      .run(id, opts.type, JSON.stringify(redact(opts.params ?? null)), opts.actor.id, opts.actor.name, now.toISOString());
    if (opts.lock) {
      ledger.prepare('INSERT INTO locks (name, job_id, acquired_at) VALUES (?, ?, ?)').run(MAINTENANCE_LOCK, id, now.toISOString());
    }
    return { ok: true, job: getJob(ledger, id)! };
  });
  return tx.immediate();
}

/** The job holding the maintenance lock, if the lock is live. */
export function lockHolder(ledger: Ledger, now = new Date()): string | null {
  const held = heldLock(ledger);
  if (!held || lockIsStale(ledger, held.job_id, now)) return null;
  return held.job_id;
}

export function releaseLock(ledger: Ledger, jobId: string): void {
  ledger.prepare('DELETE FROM locks WHERE job_id = ?').run(jobId);
}

/** Releases every stale lock; returns the job ids whose locks were dropped. */
export function releaseStaleLocks(ledger: Ledger, now = new Date()): string[] {
  return ledger
    .transaction(() => {
      const rows = ledger.prepare('SELECT name, job_id FROM locks').all() as { name: string; job_id: string }[];
      const dropped: string[] = [];
      for (const r of rows) {
        if (lockIsStale(ledger, r.job_id, now)) {
          ledger.prepare('DELETE FROM locks WHERE name = ?').run(r.name);
          dropped.push(r.job_id);
        }
      }
      return dropped;
    })
    .immediate();
}

export function markRunning(ledger: Ledger, id: string, pid: number | null, now = new Date()): void {
  ledger
    .prepare(`UPDATE jobs SET status = 'running', helper_pid = ?, started_at = COALESCE(started_at, ?) WHERE id = ? AND status = 'queued'`)
    .run(pid, now.toISOString(), id);
}

/** Another helper takes over a running job (recovery after its first helper died). */
export function setHelperPid(ledger: Ledger, id: string, pid: number | null): void {
  ledger.prepare(`UPDATE jobs SET helper_pid = ? WHERE id = ? AND status IN ('queued', 'running')`).run(pid, id);
}

const LOG_CAP = 2_000_000;

/** Appends to the job log, keeping its tail when it grows past ~2 MB. */
export function appendLog(ledger: Ledger, id: string, text: string): void {
  if (!text) return;
  ledger.prepare('UPDATE jobs SET log = substr(log || ?, -?) WHERE id = ?').run(text, LOG_CAP, id);
}

/** Records one helper event (seq = previous + 1) and mirrors progress onto the job row. */
export function recordEvent(ledger: Ledger, id: string, e: HelperEvent, now = new Date()): number {
  return ledger
    .transaction(() => {
      const r = ledger.prepare('SELECT COALESCE(MAX(seq), 0) AS s FROM job_events WHERE job_id = ?').get(id) as { s: number };
      const seq = r.s + 1;
      const at = now.toISOString();
      const step = e.type === 'progress' ? e.step : e.type === 'error' ? (e.step ?? null) : null;
      const percent = e.type === 'progress' ? e.percent : null;
      const message = e.type === 'progress' || e.type === 'log' || e.type === 'error' ? e.message : null;
      ledger
        .prepare('INSERT INTO job_events (job_id, seq, at, type, step, percent, message, data_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(id, seq, at, e.type, step, percent, message, JSON.stringify(e));
      if (e.type === 'progress') {
        ledger.prepare('UPDATE jobs SET percent = ?, step = ?, message = ? WHERE id = ?').run(e.percent, e.step, e.message, id);
      } else if (e.type === 'log') {
        appendLog(ledger, id, `${at} [${e.level}] ${e.message}\n`);
      }
      return seq;
    })
    .immediate();
}

export function listEvents(ledger: Ledger, id: string, afterSeq = 0): JobEventRow[] {
  const rows = ledger
    .prepare('SELECT seq, at, type, step, percent, message, data_json FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq')
    .all(id, afterSeq) as { seq: number; at: string; type: HelperEvent['type']; step: string | null; percent: number | null; message: string | null; data_json: string }[];
  return rows.map((r) => ({ seq: r.seq, at: r.at, type: r.type, step: r.step, percent: r.percent, message: r.message, data: JSON.parse(r.data_json) as HelperEvent }));
}

/** Ends a job once (a final status is never overwritten) and releases its lock. Returns whether it changed. */
export function finishJob(
  ledger: Ledger,
  id: string,
  end: { status: Exclude<JobStatus, 'queued' | 'running'>; result?: unknown; error?: JobError | null },
  now = new Date(),
  opts: { evenIfInterrupted?: boolean } = {},
): boolean {
  // A helper that outlived its runner may still write its real outcome over `interrupted`.
  const from = opts.evenIfInterrupted ? "('queued', 'running', 'interrupted')" : "('queued', 'running')";
  return ledger
    .transaction(() => {
      const changed = ledger
        .prepare(
          `UPDATE jobs SET status = ?, result_json = ?, error_json = ?, finished_at = ?,
             percent = CASE WHEN ? = 'succeeded' THEN 100 ELSE percent END
           WHERE id = ? AND status IN ${from}`,
        )
        .run(
          end.status,
          end.result === undefined ? null : JSON.stringify(end.result),
          end.error ? JSON.stringify(end.error) : null,
          now.toISOString(),
          end.status,
          id,
        ).changes > 0;
      // An interrupted job whose helper still runs keeps the lock until that helper is gone.
      const pid = (ledger.prepare('SELECT helper_pid FROM jobs WHERE id = ?').get(id) as { helper_pid: number | null } | undefined)?.helper_pid ?? null;
      if (!(end.status === 'interrupted' && pidAlive(pid))) releaseLock(ledger, id);
      return changed;
    })
    .immediate();
}

/**
 * At runner start: jobs left queued/running whose helper is gone become `interrupted` (with an
 * error event so their SSE stream ends), and stale locks are released.
 */
export function recoverJobs(ledger: Ledger, now = new Date()): { interrupted: string[]; locksReleased: string[] } {
  const rows = ledger.prepare(`SELECT id, status, helper_pid, created_at FROM jobs WHERE status IN ('queued', 'running')`).all() as Pick<
    JobRow,
    'id' | 'status' | 'helper_pid' | 'created_at'
  >[];
  const interrupted: string[] = [];
  for (const r of rows) {
    if (jobAlive(r, now)) continue;
    const error: JobError = { code: 'interrupted', message: 'the job was interrupted: its helper is no longer running (runner restarted or helper killed)' };
    recordEvent(ledger, r.id, { type: 'error', ...error }, now);
    if (finishJob(ledger, r.id, { status: 'interrupted', error }, now)) interrupted.push(r.id);
  }
  return { interrupted, locksReleased: releaseStaleLocks(ledger, now) };
}
