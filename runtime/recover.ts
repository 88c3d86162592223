// Recovery when a process that runs jobs starts (the runner, and the CLI before it runs a task):
// jobs whose helper died become `interrupted`, stale locks are released, and the maintenance
// journal is replayed (units a dead helper left stopped are started again), and the temp dirs of
// dead processes under <paths.state>/tmp (defaults files among them) are removed.
import type { KeeperConfig } from './config.ts';
import type { Ledger } from '../state/ledger.ts';
import { recoverJobs } from '../state/jobs.ts';
import { recoverMaintenance } from './maintenance.ts';
import { sweepTemp } from './temp.ts';

/** Restarts units a dead helper left stopped and removes its temp files (runtime/maintenance.ts). */
async function replayJournal(config: KeeperConfig, ledger: Ledger, log: (l: string) => void): Promise<void> {
  try {
    const r = await recoverMaintenance(config, ledger);
    if (Array.isArray(r) ? r.length : r) log(`maintenance journal recovery: ${JSON.stringify(r)}`);
  } catch (e) {
    log(`maintenance journal recovery failed: ${(e as Error).message}`);
  }
}

export async function recoverAtStart(config: KeeperConfig, ledger: Ledger, log: (l: string) => void, now = new Date()): Promise<void> {
  const rec = recoverJobs(ledger, now);
  if (rec.interrupted.length) log(`marked ${rec.interrupted.length} job(s) left running as interrupted: ${rec.interrupted.join(', ')}`);
  if (rec.locksReleased.length) log(`released stale lock(s) of job(s) ${rec.locksReleased.join(', ')}`);
  await replayJournal(config, ledger, log);
  for (const dir of await sweepTemp(config.paths.state).catch(() => [])) log(`removed ${dir}, left by a process that is gone`);
}
