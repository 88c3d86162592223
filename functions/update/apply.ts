// POST /api/phpborg-update/apply {target?} → 202 {job_id}; 409 {job_id} while another maintenance
// operation (backup, restore, update, rollback) runs. The work is the update.apply task.
import type { Context } from 'hono';
import type { AppEnv } from '../../runtime/bindings.ts';
import { jsonBody } from '../../runtime/errors.ts';
import { startJob } from '../jobs/start.ts';
import { ApplyParams } from './apply.task.ts';

export async function applyHandler(c: Context<AppEnv>): Promise<Response> {
  const body = await jsonBody(c, ApplyParams);
  return startJob(c, 'update.apply', body);
}
