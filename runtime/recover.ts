// Recovery when a process that runs jobs starts (the runner, and the CLI before it runs a task):
// operations whose process died are recovered in a helper (their job goes on and ends with the
// truth), other jobs whose helper died become `interrupted`, and stale locks are released.
import type { Ledger } from '../state/ledger.ts';
import { recoverJobs } from '../state/jobs.ts';
import type { JobsRuntime } from './jobs.ts';

/** Returns the jobs now recovering an operation (the CLI waits for them before its own task). */
export function recoverAtStart(ledger: Ledger, jobs: JobsRuntime, log: (l: string) => void, now = new Date()): string[] {
  const recovering = jobs.recoverOrphans();
  if (recovering.length) log(`recovering ${recovering.length} interrupted operation(s) in job(s) ${recovering.join(', ')}`);
  const rec = recoverJobs(ledger, now);
  if (rec.interrupted.length) log(`marked ${rec.interrupted.length} job(s) left running as interrupted: ${rec.interrupted.join(', ')}`);
  if (rec.locksReleased.length) log(`released stale lock(s) of job(s) ${rec.locksReleased.join(', ')}`);
  return recovering;
}
