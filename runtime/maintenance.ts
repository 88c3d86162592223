// The maintenance window: drain phpBorg's running jobs, stop the units, do the work, start the units
// again whatever failed. The units are journaled (state/operations.ts) before they are stopped, so
// if the helper dies mid-window, recovery starts them again.
import type { KeeperConfig } from './config.ts';
import type { PhpborgEnv } from './install.ts';
import { maintenanceUnits } from './install.ts';
import { runningJobs } from './mariadb.ts';
import { serviceManager, type ServiceManager } from './service-manager.ts';
import { TaskError, type ProgressParams } from './task.ts';
import type { Ledger } from '../state/ledger.ts';
import { unitsStarted, unitsStopping } from '../state/operations.ts';
import { errorMessage } from './error-message.ts';

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
      if (o.onDbError === 'skip') return { waited_ms: Date.now() - t0, forced: [], db_unreachable: errorMessage(e) };
      throw new TaskError('database_unreachable', `cannot read phpBorg's jobs table: ${errorMessage(e)}`);
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
  /** the operation journal entry the units are recorded in */
  journalId: number;
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
 * wins and the journal keeps the units as stopped, so recovery tries again.
 */
export async function withUnitsStopped<T>(o: WindowOptions, fn: () => Promise<T>): Promise<{ value: T; window: MaintenanceWindow }> {
  const sm = serviceManager(o.config);
  const all = o.units ?? maintenanceUnits(o.config, o.env);
  const units = o.onlyActive === false ? all : await activeUnits(sm, all);
  const steps = o.steps ?? { stop: 'maintenance.stop_units', start: 'maintenance.start_units' };
  unitsStopping(o.ledger, o.journalId, units);

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
    unitsStarted(o.ledger, o.journalId);
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
    throw new TaskError(
      'units_not_started',
      `could not start ${units.join(', ')} again: ${startError.message}. keeper retries when this operation is recovered; ` +
        `or run: ${[...o.config.service_manager, 'start', ...units].join(' ')}`,
      steps.start,
      undefined,
      { cause: failure ?? startError },
    );
  }
  if (failure) throw failure;
  return { value: value as T, window };
}

// the states `systemctl is-active --quiet` answers 0 for
const ACTIVE = new Set(['active', 'reloading', 'refreshing']);

async function activeUnits(sm: ServiceManager, units: string[]): Promise<string[]> {
  const states = await sm.states(units);
  return units.filter((_, i) => ACTIVE.has(states[i]));
}
