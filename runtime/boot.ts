// Where other parts plug into the platform without editing the runner or the CLI core.
// Add ONE line per hook. Both run in-process; keep them quick and never throwing.
import type { Bindings } from './bindings.ts';
import type { KeeperConfig } from './config.ts';
import type { Ledger } from '../state/ledger.ts';
import { nextBackupTime, registerNotifications, startScheduler } from './notifications.ts';
import { recoverUpdates } from '../functions/update/recover.ts';

export interface BootContext {
  config: KeeperConfig;
  configPath: string;
  ledger: Ledger;
}

/**
 * Runs once in every process that runs jobs (the runner AND the CLI), before any job starts:
 * register job-finished listeners here (runtime/jobs.ts onJobFinished), e.g. mail notifications.
 */
export async function bootHooks(_ctx: BootContext): Promise<void> {
  registerNotifications();
  recoverUpdates(_ctx);
}

/**
 * Runs once in the runner only, after recovery, when it starts serving: background services such as
 * the croner schedule. Return a stop function for each; they are called at shutdown.
 */
export async function startServices(_env: Bindings): Promise<Array<() => void | Promise<void>>> {
  const stops: Array<() => void | Promise<void>> = [];
  stops.push(await startScheduler(_env));
  return stops;
}

/**
 * What `keeper status` shows as "next scheduled backup" (ISO time, never past) and, for a pending
 * catch-up, the missed due time it makes up for.
 */
export async function nextScheduledBackup(_ctx: BootContext): Promise<{ next_run: string | null; catch_up_of: string | null }> {
  return nextBackupTime(_ctx);
}
