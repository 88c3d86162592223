// Shared by every function that starts a task: 202 {job_id}, or 409 naming the running job.
import type { Context } from 'hono';
import type { AppEnv } from '../../runtime/bindings.ts';
import { HttpError } from '../../runtime/errors.ts';
import type { Actor } from '../../runtime/task.ts';

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
