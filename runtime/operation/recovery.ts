// Which journal entries need recovery: open ones whose process is gone and that no live helper is
// already recovering. The recovery itself is a task (functions/operation/recover.task.ts) run in a
// helper like any other, so it has the helper's privileges; the runtime only finds the entries and
// starts it — when it sees a helper die without a result, at every start, and periodically for
// entries a helper it no longer follows left behind.
import type { Ledger } from '../../state/ledger.ts';
import { getJob, isFinal, jobAlive, pidAlive } from '../../state/jobs.ts';
import { openOperations, type OperationEntry } from '../../state/operations.ts';

/** The task that recovers interrupted operations. */
export const RECOVER_TASK = 'operation.recover';

/** Open entries whose process is gone, grouped by job (null: entries of no job, e.g. the emergency script). */
export function orphanedOperations(ledger: Ledger): Map<string | null, OperationEntry[]> {
  const out = new Map<string | null, OperationEntry[]>();
  for (const e of openOperations(ledger)) {
    if (pidAlive(e.pid)) continue;
    // a job whose (recovery) helper is alive is being looked after
    const job = e.job_id ? getJob(ledger, e.job_id) : undefined;
    if (job && jobAlive(job)) continue;
    const key = job && !isFinal(job.status) ? e.job_id : null;
    out.set(key, [...(out.get(key) ?? []), e]);
  }
  return out;
}
