// Where the operations plug into the platform. runtime/ never imports functions/: each entry point
// (scripts/runner.ts, scripts/keeper.ts) hands in one Operations object, and this module starts the
// jobs runtime with it, in the runner and in the CLI alike.
import type { Bindings } from './bindings.ts';
import type { KeeperConfig } from './config.ts';
import type { TaskLookup } from './task.ts';
import type { Ledger } from '../state/ledger.ts';
import { createJobs, type JobFinishedListener, type JobsRuntime } from './jobs.ts';
import { recoverAtStart } from './recover.ts';
import { sweepTemp } from './temp.ts';
import { createScheduler, nextScheduledRun, type NextRunInfo } from './schedule.ts';
import { phpborgDb } from './phpborg-db.ts';

export interface BootContext {
  config: KeeperConfig;
  configPath: string;
  ledger: Ledger;
}

/** Runs once in every process that runs jobs, before any job starts; quick and never throwing. */
export type BootHook = (ctx: BootContext) => void | Promise<void>;

/** What the operations give the platform, besides the HTTP app. */
export interface Operations {
  /** the tasks a job may run */
  tasks: TaskLookup;
  /** e.g. close what a dead helper left open */
  boot: readonly BootHook[];
  /** told after every job ends, in the process that ran its helper: API, CLI and scheduled runs */
  finished: readonly JobFinishedListener[];
}

/**
 * Creates the jobs runtime over the operations' tasks and listeners, starts the recovery of operations
 * whose process died (their jobs: `recovering`), then runs the boot hooks.
 */
export async function startJobs(
  ops: Operations,
  ctx: BootContext,
  o: { now?: () => Date; log?: (line: string) => void } = {},
): Promise<{ jobs: JobsRuntime; recovering: string[] }> {
  const jobs = createJobs({ ...ctx, now: o.now, tasks: ops.tasks, finished: ops.finished });
  const log = o.log ?? (() => {});
  const recovering = recoverAtStart(ctx.ledger, jobs, log, o.now?.());
  // what dead processes left under <paths.state>/tmp (defaults files among them)
  for (const dir of await sweepTemp(ctx.config.paths.state).catch(() => [])) log(`removed ${dir}, left by a process that is gone`);
  for (const hook of ops.boot) await hook(ctx);
  return { jobs, recovering };
}

/**
 * Runs once in the runner only, after recovery, when it starts serving: background services such as
 * the croner schedule. Returns a stop function for each; they are called at shutdown.
 */
export async function startServices(env: Bindings): Promise<Array<() => void | Promise<void>>> {
  const scheduler = createScheduler({ config: env.config, ledger: env.ledger, phpborg: env.phpborg, clock: env.clock, jobs: env.jobs }, { timers: true });
  // not awaited: a slow phpBorg database (timezone lookup) must not hold the runner's start
  scheduler.start().catch((e: Error) => console.error(`[keeper] scheduler: ${e.message}`));
  return [() => scheduler.stop()];
}

/**
 * What `keeper status` shows as "next scheduled backup" (ISO time, never past; null when off) and,
 * for a pending catch-up, the missed due time it makes up for.
 */
export async function nextScheduledBackup(ctx: BootContext): Promise<Pick<NextRunInfo, 'next_run' | 'catch_up_of'>> {
  const db = phpborgDb(ctx.config);
  try {
    const { next_run, catch_up_of } = await nextScheduledRun({ config: ctx.config, ledger: ctx.ledger, phpborg: db, clock: { now: () => new Date() } });
    return { next_run, catch_up_of };
  } finally {
    await db.close();
  }
}
