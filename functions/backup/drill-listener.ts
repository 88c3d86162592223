// The weekly restore drill: after each scheduled backup succeeds, the runner that ran it starts a drill
// of that very backup. A job-finished listener (not the scheduler) so the drill follows the backup's
// real end, and starts only once the backup's maintenance lock is released.
import type { JobFinishedListener } from '../../runtime/jobs.ts';
import { errorMessage } from '../../runtime/error-message.ts';
import { DRILL_TASK } from './drill.task.ts';

export const drillAfterScheduledBackup: JobFinishedListener = (job, ctx) => {
  if (job.type !== 'backup.create' || job.status !== 'succeeded') return;
  const params = (job.params ?? {}) as { type?: unknown };
  if (params.type !== 'scheduled') return;
  const id = (job.result as { id?: unknown } | null)?.id;
  if (typeof id !== 'number') return;
  try {
    const r = ctx.jobs.start(DRILL_TASK, { backup_id: id }, { id: null, name: 'scheduler' });
    if (!r.ok) console.error(`[keeper] the restore drill of backup ${id} was not started: job ${r.runningJobId} is running`);
  } catch (e) {
    console.error(`[keeper] cannot start the restore drill of backup ${id}: ${errorMessage(e)}`);
  }
};
