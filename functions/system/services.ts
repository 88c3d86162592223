// GET /api/system/services — runs the `system.services` task (a job, through the helper) and waits
// for it up to ?wait= seconds (default 10, 0–30): 200 {job_id, units} when it finished in time,
// else 202 {job_id} to follow at /api/jobs/:id. A failed job → 502 with the job's error.
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../../runtime/bindings.ts';
import { HttpError, queryParams } from '../../runtime/errors.ts';
import { getJob, isFinal } from '../../state/jobs.ts';
import { startTask } from '../jobs/start.ts';

const Query = v.object({
  wait: v.optional(v.pipe(v.string(), v.regex(/^\d+$/, 'expected whole seconds'), v.transform(Number), v.maxValue(30)), '10'),
});

export async function servicesHandler(c: Context<AppEnv>): Promise<Response> {
  const { wait } = queryParams(c, Query);
  const id = startTask(c, 'system.services', {});
  const deadline = Date.now() + wait * 1000;
  await new Promise<void>((resolve) => {
    const check = () => {
      const j = getJob(c.env.ledger, id);
      if (!j || isFinal(j.status) || Date.now() >= deadline) {
        unsub();
        clearInterval(t);
        resolve();
      }
    };
    const unsub = c.env.jobs.subscribe(id, check);
    const t = setInterval(check, 100);
    check();
  });
  const job = getJob(c.env.ledger, id)!;
  if (!isFinal(job.status)) return c.json({ job_id: id, status: job.status }, 202);
  if (job.status !== 'succeeded') {
    throw new HttpError(502, job.error?.code ?? 'failed', job.error?.message ?? `job ${id} ended ${job.status}`, { job_id: id });
  }
  return c.json({ job_id: id, status: job.status, ...(job.result as object) });
}
