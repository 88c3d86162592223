// Recovery when a process that runs jobs starts (the runner, and the CLI before it runs a task):
// jobs whose helper died become `interrupted`, stale locks are released, and the maintenance
// journal is replayed (units a dead helper left stopped are started again).
import type { KeeperConfig } from './config.ts';
import type { Ledger } from '../state/ledger.ts';
import { recoverJobs } from '../state/jobs.ts';

/**
 * RECOVERY HOOK: the backup engineer's recoverMaintenance(config, ledger) (runtime/maintenance.ts,
 * over state/journal.ts) restarts units a dead helper left stopped and removes its temp files.
 * Loaded dynamically so the runner still starts if that module is missing or broken.
 */
export async function recoverMaintenance(config: KeeperConfig, ledger: Ledger, log: (l: string) => void): Promise<void> {
  type Hook = (c: KeeperConfig, l: Ledger) => unknown;
  let hook: Hook | undefined;
  for (const m of ['./maintenance.ts', '../state/journal.ts']) {
    try {
      const mod = (await import(new URL(m, import.meta.url).href)) as { recoverMaintenance?: Hook };
      if (typeof mod.recoverMaintenance === 'function') {
        hook = mod.recoverMaintenance;
        break;
      }
    } catch {
      /* try the next place */
    }
  }
  if (!hook) {
    log('maintenance journal recovery unavailable (no recoverMaintenance exported)');
    return;
  }
  try {
    const r = await hook(config, ledger);
    if (Array.isArray(r) ? r.length : r) log(`maintenance journal recovery: ${JSON.stringify(r)}`);
  } catch (e) {
    log(`maintenance journal recovery failed: ${(e as Error).message}`);
  }
}

export async function recoverAtStart(config: KeeperConfig, ledger: Ledger, log: (l: string) => void, now = new Date()): Promise<void> {
  const rec = recoverJobs(ledger, now);
  if (rec.interrupted.length) log(`marked ${rec.interrupted.length} job(s) left running as interrupted: ${rec.interrupted.join(', ')}`);
  if (rec.locksReleased.length) log(`released stale lock(s) of job(s) ${rec.locksReleased.join(', ')}`);
  await recoverMaintenance(config, ledger, log);
}
