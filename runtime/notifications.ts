// Plugs mail notifications into the job runtime: one job-finished listener per process (runner and
// CLI alike, so API, CLI and scheduled runs all notify), and the scheduler into the runner.
import type { Bindings } from './bindings.ts';
import type { BootContext } from './boot.ts';
import { onJobFinished } from './jobs.ts';
import { createScheduler, nextScheduledRun, type NextRunInfo } from './schedule.ts';
import { phpborgDb } from '../state/phpborg-db.ts';
import { notifyJob } from '../functions/notify/notify.ts';

let registered = false;

/** Registers the mail listener once per process; it reads config and ledger from each job's runtime. */
export function registerNotifications(): void {
  if (registered) return;
  registered = true;
  onJobFinished(async (job, ctx) => {
    // a pool per notification: the CLI must be able to exit, and .env may have changed (restore)
    const db = phpborgDb(ctx.config);
    try {
      await notifyJob({ config: ctx.config, ledger: ctx.ledger, phpborg: db }, job);
    } finally {
      await db.close();
    }
  });
}

/** Starts the weekly schedule in the runner; returns its stop function. */
export async function startScheduler(env: Bindings): Promise<() => void> {
  const s = createScheduler({ config: env.config, ledger: env.ledger, phpborg: env.phpborg, clock: env.clock, jobs: env.jobs }, { timers: true });
  // not awaited: a slow phpBorg database (timezone lookup) must not hold the runner's start
  s.start().catch((e: Error) => console.error(`[keeper] scheduler: ${e.message}`));
  return () => s.stop();
}

/** The next scheduled backup (ISO, never past; null when off), for `keeper status`, and the missed run it catches up. */
export async function nextBackupTime(ctx: BootContext): Promise<Pick<NextRunInfo, 'next_run' | 'catch_up_of'>> {
  const db = phpborgDb(ctx.config);
  try {
    const { next_run, catch_up_of } = await nextScheduledRun({ config: ctx.config, ledger: ctx.ledger, phpborg: db, clock: { now: () => new Date() } });
    return { next_run, catch_up_of };
  } finally {
    await db.close();
  }
}
