// Shared by every function that starts a task: 202 {job_id}, or 409 naming the running job; and, for
// the short read-only tasks (preview, services), "start it, wait a little, answer with its result".
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import * as v from 'valibot';
import type { AppEnv } from '../../runtime/bindings.ts';
import { HttpError, queryParams } from '../../runtime/errors.ts';
import type { Actor } from '../../runtime/task.ts';
import { getJob, isFinal, type JobView } from '../../state/jobs.ts';

/** Starts `task` for the caller; throws HttpError 409 {code: "busy", job_id} when a maintenance job runs. */
export function startTask(c: Context<AppEnv>, task: string, params: unknown, actor: Actor = c.var.actor): string {
  const r = c.env.jobs.start(task, params, actor);
  if (!r.ok) {
    throw new HttpError(409, 'busy', `another maintenance operation is running: job ${r.runningJobId} is running; wait for it to finish`, {
      job_id: r.runningJobId,
    });
  }
  return r.jobId;
}

/** startTask, answered the usual way: 202 {job_id, status_url, events_url}. */
export function startJob(c: Context<AppEnv>, task: string, params: unknown): Response {
  const id = startTask(c, task, params);
  return c.json({ job_id: id, status_url: `/api/jobs/${id}`, events_url: `/api/jobs/${id}/events` }, 202);
}

/** The `?wait=` query (whole seconds, at most `maxS`, `defaultS` when absent), validated (422 otherwise). */
export function waitSeconds(c: Context<AppEnv>, defaultS: number, maxS: number): number {
  const Query = v.object({
    wait: v.optional(v.pipe(v.string(), v.regex(/^\d+$/, 'expected whole seconds'), v.transform(Number), v.maxValue(maxS)), String(defaultS)),
  });
  return queryParams(c, Query).wait;
}

export interface RunAndRespondOptions {
  /** how long to wait for the job before answering 202 {job_id, status} */
  waitS: number;
  /** a failed job's error code → HTTP status; codes not listed → 502 */
  statusFor?: Partial<Record<string, ContentfulStatusCode>>;
  /** 200 body: the job's result alone (default), or {job_id, status, ...result} */
  withJob?: boolean;
}

/** The job once it is final, or as it stands after `seconds`. */
async function settle(c: Context<AppEnv>, id: string, seconds: number): Promise<JobView> {
  try {
    return await c.env.jobs.wait(id, seconds * 1000);
  } catch (e) {
    if ((e as { code?: string }).code !== 'timeout') throw e;
    // final in the ledger but its finished listeners (mail…) still running counts as done too
    return getJob(c.env.ledger, id)!;
  }
}

/**
 * Starts `task`, waits for it up to `waitS` seconds and answers: 200 with its result when it
 * succeeded in time, 202 {job_id, status} to follow at /api/jobs/:id when it did not, and the job's
 * error (status from `statusFor`, else 502, with job_id) when it failed.
 */
export async function runAndRespond(c: Context<AppEnv>, task: string, params: unknown, opts: RunAndRespondOptions): Promise<Response> {
  const id = startTask(c, task, params);
  const job = await settle(c, id, opts.waitS);
  if (!isFinal(job.status)) return c.json({ job_id: id, status: job.status }, 202);
  if (job.status !== 'succeeded') {
    const code = job.error?.code ?? 'failed';
    throw new HttpError(opts.statusFor?.[code] ?? 502, code, job.error?.message ?? `job ${id} ended ${job.status}`, { job_id: id });
  }
  return c.json(opts.withJob ? { job_id: id, status: job.status, ...(job.result as object) } : (job.result as object));
}
