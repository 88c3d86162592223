// The maintenance window: drain phpBorg's running jobs, stop the units, do the work,
// start the units again whatever failed. Journaled in the ledger before anything is stopped, so a
// helper that dies mid-window is undone by the runner's next start (recoverMaintenance).
// Backup, restore, update and rollback all use this module for their stop/start.
import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { KeeperConfig } from './config.ts';
import type { PhpborgEnv } from './install.ts';
import { maintenanceUnits } from './install.ts';
import { runningJobs } from './mariadb.ts';
import { serviceManager, type ServiceManager } from './service-manager.ts';
import { TaskError, type ProgressParams } from './task.ts';
import type { Ledger } from '../state/ledger.ts';
import {
  closeJournal,
  getJournal,
  journalUnitsStarted,
  journalUnitsStopping,
  openJournal,
  openJournalEntries,
  type JournalEntry,
} from '../state/journal.ts';
import { removePartials } from '../functions/archive/write.ts';

type Progress = (step: string, percent: number, message: string, params?: ProgressParams) => void;

export interface DrainOptions {
  /** seconds to wait; default config.drain_timeout_s */
  timeoutS: number;
  /** go on even though jobs still run (never kills them) */
  force?: boolean;
  /** whether the caller offers force: when not (an update), the refusal does not suggest it */
  forcible?: boolean;
  signal?: AbortSignal;
  pollMs?: number;
  /** called while waiting, with the jobs still running */
  onWait?: (running: { id: number; type: string }[], waitedMs: number) => void;
  /** what to do when the database does not answer: throw (default) or go on (restore of a dead DB) */
  onDbError?: 'throw' | 'skip';
}

export interface DrainResult {
  waited_ms: number;
  /** jobs still running when the window opened (only with force) */
  forced: { id: number; type: string }[];
  db_unreachable?: string;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });

export const describeJobs = (jobs: { id: number; type: string }[]) =>
  jobs.map((j) => `#${j.id}${j.type ? ` (${j.type})` : ''}`).join(', ');

/**
 * Waits, bounded, for the phpBorg jobs `running` when the drain began to finish. Jobs a worker picks
 * up meanwhile are left to the workers' graceful stop (they finish their current job on SIGTERM):
 * waiting for a moment with none running at all may never come on a busy install. Never kills a job:
 * past the deadline it refuses (TaskError jobs_running naming them) unless forced.
 */
export async function drain(env: PhpborgEnv, o: DrainOptions): Promise<DrainResult> {
  const t0 = Date.now();
  const deadline = t0 + o.timeoutS * 1000;
  let first: Set<number> | null = null;
  for (;;) {
    let running: { id: number; type: string }[];
    try {
      running = await runningJobs(env);
    } catch (e) {
      if (o.onDbError === 'skip') return { waited_ms: Date.now() - t0, forced: [], db_unreachable: (e as Error).message };
      throw new TaskError('database_unreachable', `cannot read phpBorg's jobs table: ${(e as Error).message}`);
    }
    const waited = Date.now() - t0;
    first ??= new Set(running.map((j) => j.id));
    const pending = running.filter((j) => first!.has(j.id));
    if (pending.length === 0) return { waited_ms: waited, forced: [] };
    if (Date.now() >= deadline) {
      if (o.force) return { waited_ms: waited, forced: pending };
      throw new TaskError(
        'jobs_running',
        `phpBorg jobs still running after ${o.timeoutS} s: ${describeJobs(pending)}. ` +
          (o.forcible === false
            ? 'Wait for them to finish and try again (this operation never runs beside a phpBorg job).'
            : 'Wait for them to finish and try again, or force (--force / "force": true) to go on without killing them.'),
        undefined,
        { running: pending },
      );
    }
    o.onWait?.(pending, waited);
    await sleep(Math.min(o.pollMs ?? 250, Math.max(50, deadline - Date.now())), o.signal);
  }
}

export interface MaintenanceWindow {
  /** units stopped (and started again) */
  units: string[];
  started_at: string;
  ended_at: string;
  ms: number;
}

export interface WindowOptions {
  config: KeeperConfig;
  ledger: Ledger;
  env: Pick<PhpborgEnv, 'WORKER_POOL_SIZE'>;
  /** the journal entry to record in (openJournal); a new one is opened (and closed) when absent */
  journalId?: number;
  jobId?: string | null;
  /** default: maintenanceUnits(config, env) */
  units?: string[];
  /** stop only units that are active now and restart only those (default true) */
  onlyActive?: boolean;
  progress?: Progress;
  /** step keys for the progress events */
  steps?: { stop: string; start: string };
  /** called once the window is closed (units started or failed to), even when fn threw */
  onWindow?: (w: MaintenanceWindow) => void;
}

/**
 * Stops the units, runs fn, starts the units again whatever happened; the window (stop → start done)
 * is measured. The journal records the units before they are stopped. If starting fails, that error
 * wins and the journal stays open, so recovery will try again.
 */
export async function withUnitsStopped<T>(o: WindowOptions, fn: () => Promise<T>): Promise<{ value: T; window: MaintenanceWindow }> {
  const sm = serviceManager(o.config);
  const all = o.units ?? maintenanceUnits(o.config, o.env);
  const units = o.onlyActive === false ? all : await activeUnits(sm, all);
  const steps = o.steps ?? { stop: 'maintenance.stop_units', start: 'maintenance.start_units' };
  const ownJournal = o.journalId === undefined;
  const journalId = o.journalId ?? openJournal(o.ledger, { jobId: o.jobId ?? null, units });
  journalUnitsStopping(o.ledger, journalId, units);

  const t0 = performance.now();
  const started_at = new Date();
  o.progress?.(steps.stop, 0, `Stopping ${units.length} unit(s): ${units.join(', ')}`, { units: units.join(',') });
  let value: T | undefined;
  let failure: unknown = null;
  try {
    await sm.stop(units);
    value = await fn();
  } catch (e) {
    failure = e;
  }
  o.progress?.(steps.start, 0, `Starting ${units.length} unit(s) again`, { units: units.join(',') });
  let startError: Error | null = null;
  try {
    await sm.start(units);
    journalUnitsStarted(o.ledger, journalId);
  } catch (e) {
    startError = e as Error;
  }
  const window: MaintenanceWindow = {
    units,
    started_at: started_at.toISOString(),
    ended_at: new Date().toISOString(),
    ms: Math.round(performance.now() - t0),
  };
  o.onWindow?.(window);
  if (startError) {
    const also = failure ? ` (after: ${(failure as Error).message})` : '';
    throw new TaskError(
      'units_not_started',
      `could not start ${units.join(', ')} again: ${startError.message}${also}. The runner retries at its next start; ` +
        `or run: ${[...o.config.service_manager, 'start', ...units].join(' ')}`,
      steps.start,
    );
  }
  if (ownJournal) closeJournal(o.ledger, journalId);
  if (failure) throw failure;
  return { value: value as T, window };
}

async function activeUnits(sm: ServiceManager, units: string[]): Promise<string[]> {
  const states = await Promise.all(units.map((u) => sm.isActive(u)));
  return units.filter((_, i) => states[i]);
}

export interface RecoveredEntry {
  journal_id: number;
  job_id: string | null;
  units_started: string[];
  removed: string[];
  errors: string[];
}

/** Whether a process exists (signal 0). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A job is alive when its row is not final and its helper process (when recorded) still exists. */
export function jobAlive(ledger: Ledger, jobId: string | null): boolean {
  if (!jobId) return false;
  const j = ledger.prepare('SELECT status, helper_pid FROM jobs WHERE id = ?').get(jobId) as
    | { status: string; helper_pid: number | null }
    | undefined;
  if (!j || !['queued', 'running'].includes(j.status)) return false;
  return j.helper_pid === null ? j.status === 'queued' : pidAlive(j.helper_pid);
}

/**
 * Called by the runner at start (and by the CLI): for every journal entry left open by a job that is
 * no longer alive, start its units again if it had stopped them, remove its temporary files and the
 * archive writer's partial files, mark its unfinished catalog rows failed, and close the entry.
 */
export async function recoverMaintenance(
  config: KeeperConfig,
  ledger: Ledger,
  opts: { isAlive?: (jobId: string | null) => boolean } = {},
): Promise<RecoveredEntry[]> {
  const alive = opts.isAlive ?? ((id: string | null) => jobAlive(ledger, id));
  const out: RecoveredEntry[] = [];
  for (const e of openJournalEntries(ledger)) {
    if (alive(e.job_id)) continue;
    out.push(await recoverEntry(config, ledger, e));
  }
  return out;
}

async function recoverEntry(config: KeeperConfig, ledger: Ledger, e: JournalEntry): Promise<RecoveredEntry> {
  const r: RecoveredEntry = { journal_id: e.id, job_id: e.job_id, units_started: [], removed: [], errors: [] };
  if (e.state === 'units_stopped' && e.units.length) {
    try {
      await serviceManager(config).start(e.units);
      r.units_started = e.units;
      journalUnitsStarted(ledger, e.id);
    } catch (err) {
      r.errors.push(`start ${e.units.join(' ')}: ${(err as Error).message}`);
    }
  }
  const dirs = new Set<string>();
  for (const f of e.temp_files) {
    try {
      await rm(f, { recursive: true, force: true });
      r.removed.push(f);
      dirs.add(dirname(f));
    } catch (err) {
      r.errors.push(`remove ${f}: ${(err as Error).message}`);
    }
  }
  for (const d of dirs) {
    try {
      r.removed.push(...(await removePartials(d)));
    } catch (err) {
      r.errors.push(`partials in ${d}: ${(err as Error).message}`);
    }
  }
  if (e.job_id) {
    ledger.prepare("UPDATE phpborg_backups SET status = 'failed' WHERE job_id = ? AND status = 'creating'").run(e.job_id);
  }
  if (r.errors.length === 0 || !r.errors.some((x) => x.startsWith('start '))) closeJournal(ledger, e.id, 'recovered');
  return r;
}

/** The journal entry as it stands (for tests and status). */
export { getJournal };
