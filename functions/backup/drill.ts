// POST /api/phpborg-backup/:id/drill → 202 {job_id}: the backup.drill task proves that backup
// restorable in a scratch dir and a scratch database; the live install is never touched.
import type { Context } from 'hono';
import type { AppEnv } from '../../runtime/bindings.ts';
import { HttpError } from '../../runtime/errors.ts';
import { lockHolder } from '../../state/jobs.ts';
import { startJob } from '../jobs/start.ts';
import { catalogedId } from '../restore/handlers.ts';
import { DRILL_TASK } from './drill.task.ts';

export async function drillBackupHandler(c: Context<AppEnv>): Promise<Response> {
  const backup_id = catalogedId(c);
  // not a maintenance task, so the lock does not refuse it: refuse here instead of failing the job later
  const holder = lockHolder(c.env.ledger);
  if (holder) throw new HttpError(409, 'busy', `a maintenance operation is running (job ${holder}): the drill does not run inside a maintenance window`, { job_id: holder });
  return startJob(c, DRILL_TASK, { backup_id });
}
