// POST /api/phpborg-update/rollback/:historyId {confirm: true, force?} → 202 {job_id} (409 busy):
// restores that update's pre-update backup. GET /api/phpborg-update/rollback/:historyId/preview →
// 200 what the rollback would change (the restore preview of that backup), or 202 {job_id} past ?wait.
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../../runtime/bindings.ts';
import { HttpError, jsonBody, queryParams, validate } from '../../runtime/errors.ts';
import { getJob, isFinal } from '../../state/jobs.ts';
import { getUpdate } from '../../state/updates.ts';
import { startJob, startTask } from '../jobs/start.ts';
import { waitForJob } from '../restore/handlers.ts';

const IdParam = v.pipe(v.string(), v.regex(/^[1-9]\d{0,15}$/, 'expected an update history id (a positive whole number)'), v.transform(Number));

const Body = v.strictObject({
  confirm: v.literal(true, 'a rollback replaces the database, code and configuration: send {"confirm": true}'),
  force: v.optional(v.boolean('expected true or false'), false),
});

const Wait = v.object({
  wait: v.optional(v.pipe(v.string(), v.regex(/^\d+$/, 'expected whole seconds'), v.transform(Number), v.maxValue(120)), '30'),
});

/** The :historyId of the route: an update (not a rollback) with a pre-update backup, else 404/409. */
function updateId(c: Context<AppEnv>): number {
  const id = validate(IdParam, c.req.param('historyId'));
  const row = getUpdate(c.env.ledger, id);
  if (!row) throw new HttpError(404, 'not_found', `no update #${id} in the history`);
  if (row.kind !== 'update') throw new HttpError(409, 'not_an_update', `history #${id} is a ${row.kind}, not an update`);
  if (row.status === 'running') throw new HttpError(409, 'update_running', `update #${id} is still running`);
  if (row.backup_id === null) throw new HttpError(409, 'no_backup', `update #${id} has no pre-update backup to roll back to`);
  return id;
}

export async function rollbackHandler(c: Context<AppEnv>): Promise<Response> {
  const history_id = updateId(c);
  const body = await jsonBody(c, Body);
  return startJob(c, 'update.rollback', { history_id, force: body.force });
}

const STATUS: Record<string, 404 | 409 | 422> = {
  not_found: 404,
  file_missing: 404,
  not_ready: 409,
  passphrase_required: 422,
  wrong_passphrase: 422,
};

export async function rollbackPreviewHandler(c: Context<AppEnv>): Promise<Response> {
  const history_id = updateId(c);
  const { wait } = queryParams(c, Wait);
  const id = startTask(c, 'update.rollback_preview', { history_id });
  await waitForJob(c, id, wait);
  const job = getJob(c.env.ledger, id)!;
  if (!isFinal(job.status)) return c.json({ job_id: id, status: job.status }, 202);
  if (job.status !== 'succeeded') {
    const code = job.error?.code ?? 'failed';
    throw new HttpError(STATUS[code] ?? 502, code, job.error?.message ?? `job ${id} ended ${job.status}`, { job_id: id });
  }
  return c.json(job.result as object);
}
