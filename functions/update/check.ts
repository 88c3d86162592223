// POST /api/phpborg-update/check → 202 {job_id}: the update.check task fetches, then its result is
// the same report as GET /api/phpborg-update/status.
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../../runtime/bindings.ts';
import { jsonBody } from '../../runtime/errors.ts';
import { startJob } from '../jobs/start.ts';
import { CheckParams } from './check.task.ts';

export async function checkHandler(c: Context<AppEnv>): Promise<Response> {
  const body: v.InferOutput<typeof CheckParams> = await jsonBody(c, CheckParams);
  return startJob(c, 'update.check', body);
}
