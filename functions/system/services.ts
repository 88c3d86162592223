// GET /api/system/services — runs the `system.services` task (a job, through the helper) and waits
// for it up to ?wait= seconds (default 10, 0–30): 200 {job_id, units} when it finished in time,
// else 202 {job_id} to follow at /api/jobs/:id. A failed job → 502 with the job's error.
import type { Context } from 'hono';
import type { AppEnv } from '../../runtime/bindings.ts';
import { runAndRespond, waitSeconds } from '../jobs/start.ts';

export async function servicesHandler(c: Context<AppEnv>): Promise<Response> {
  return runAndRespond(c, 'system.services', {}, { waitS: waitSeconds(c, 10, 30), withJob: true });
}
