// GET /api/jobs/:id — the job row (status, percent, step, result, error) and its log.
// GET /api/jobs — the newest jobs.
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../../runtime/bindings.ts';
import { HttpError, queryParams } from '../../runtime/errors.ts';
import { getJob, getJobLog, listJobs } from '../../state/jobs.ts';

export function getJobHandler(c: Context<AppEnv>): Response {
  const id = c.req.param('id') ?? '';
  const job = getJob(c.env.ledger, id);
  if (!job) throw new HttpError(404, 'not_found', `no job ${id}`);
  return c.json({ ...job, log: getJobLog(c.env.ledger, id) ?? '' });
}

const ListQuery = v.object({
  limit: v.optional(v.pipe(v.string(), v.regex(/^\d{1,3}$/, 'expected a number 1-500'), v.transform(Number), v.minValue(1), v.maxValue(500))),
  type: v.optional(v.pipe(v.string(), v.regex(/^[a-z_.]+$/, 'expected a task name'))),
});

export function listJobsHandler(c: Context<AppEnv>): Response {
  const q = queryParams(c, ListQuery);
  return c.json({ items: listJobs(c.env.ledger, { limit: q.limit ?? 50, type: q.type }) });
}
