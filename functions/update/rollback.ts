// POST /api/phpborg-update/rollback/:historyId {confirm: true, force?} → 202 {job_id} (409 busy):
// restores that update's pre-update backup. GET /api/phpborg-update/rollback/:historyId/preview →
// 200 what the rollback would change (the restore preview of that backup), or 202 {job_id} past ?wait.
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../../runtime/bindings.ts';
import { HttpError, jsonBody, validate } from '../../runtime/errors.ts';
import { getUpdate } from '../../state/updates.ts';
import { runAndRespond, startJob, waitSeconds } from '../jobs/start.ts';

const IdParam = v.pipe(v.string(), v.regex(/^[1-9]\d{0,15}$/, 'expected an update history id (a positive whole number)'), v.transform(Number));

const Body = v.strictObject({
  confirm: v.literal(true, 'a rollback replaces the database, code and configuration: send {"confirm": true}'),
  force: v.optional(v.boolean('expected true or false'), false),
});

/** The :historyId of the route: an update (not a rollback) with a pre-update backup, else 404/409. */
function updateId(c: Context<AppEnv>): number {
  const id = validate(IdParam, c.req.param('historyId'));
  const row = getUpdate(c.env.ledger, id);
  if (!row) throw new HttpError(404, 'not_found', `no update #${id} in the history: pick an id from GET /api/phpborg-update/history`);
  if (row.kind !== 'update') {
    throw new HttpError(409, 'not_an_update', `history #${id} is a ${row.kind}, not an update: roll back the update it belongs to (#${row.parent_id})`);
  }
  if (row.status === 'running') throw new HttpError(409, 'update_running', `update #${id} is still running: wait for it to finish (it rolls back by itself on failure)`);
  if (row.backup_id === null) {
    throw new HttpError(409, 'no_backup', `update #${id} has no pre-update backup to roll back to: restore another backup instead (GET /api/phpborg-backup/list)`);
  }
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
  const waitS = waitSeconds(c, 30, 120);
  return runAndRespond(c, 'update.rollback_preview', { history_id }, { waitS, statusFor: STATUS });
}
