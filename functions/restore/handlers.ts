// Restore routes. Preview: GET /api/phpborg-backup/:id/restore-preview uses the stored passphrase;
// POST to the same path with {"passphrase": "..."} gives one (never in a URL: URLs end up in logs).
// Both run the backup.restore_preview task and answer 200 with the preview (or 202 {job_id} if it
// takes longer than ?wait= seconds, default 30). Restore: POST /api/phpborg-backup/:id/restore
// {confirm: true, passphrase?, force?, skip_safety_backup?} → 202 {job_id}.
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../../runtime/bindings.ts';
import { HttpError, jsonBody, validate } from '../../runtime/errors.ts';
import { getBackup } from '../../state/catalog.ts';
import { runAndRespond, startJob, waitSeconds } from '../jobs/start.ts';

const IdParam = v.pipe(v.string(), v.regex(/^[1-9]\d{0,15}$/, 'expected a backup id (a positive whole number)'), v.transform(Number));

/** The :id of the route, which must name a complete backup in the catalog (404 otherwise). */
export function catalogedId(c: Context<AppEnv>): number {
  const id = validate(IdParam, c.req.param('id'));
  const b = getBackup(c.env.ledger, id);
  if (!b) throw new HttpError(404, 'not_found', `no backup with id ${id}`);
  if (b.status !== 'succeeded') throw new HttpError(409, 'not_ready', `backup ${id} is ${b.status}, not a complete archive`);
  return id;
}

const Passphrase = v.optional(v.nullable(v.pipe(v.string('expected a string'), v.maxLength(1024, 'expected at most 1024 characters'))));

/** Error codes of a failed preview/verify job → HTTP status. */
const STATUS: Record<string, 404 | 409 | 422 | 502> = {
  not_found: 404,
  file_missing: 404,
  not_ready: 409,
  passphrase_required: 422,
  wrong_passphrase: 422,
  corrupt: 422,
  truncated: 422,
  not_keeper: 422,
  unsafe_entry: 422,
  layout: 422,
  missing_entry: 422,
  manifest_mismatch: 422,
};

async function preview(c: Context<AppEnv>, passphrase: string | null | undefined): Promise<Response> {
  const backup_id = catalogedId(c);
  const waitS = waitSeconds(c, 30, 120);
  return runAndRespond(c, 'backup.restore_preview', { backup_id, ...(passphrase ? { passphrase } : {}) }, { waitS, statusFor: STATUS });
}

export function previewGetHandler(c: Context<AppEnv>): Promise<Response> {
  return preview(c, null);
}

export async function previewPostHandler(c: Context<AppEnv>): Promise<Response> {
  const body = await jsonBody(c, v.strictObject({ passphrase: Passphrase }));
  return preview(c, body.passphrase);
}

const RestoreBody = v.pipe(
  v.strictObject({
    confirm: v.literal(true, 'a restore replaces the whole install: send "confirm": true'),
    passphrase: Passphrase,
    force: v.optional(v.boolean('expected true or false'), false),
    skip_safety_backup: v.optional(v.boolean('expected true or false'), false),
    accept_db_change: v.optional(v.boolean('expected true or false'), false),
  }),
  v.check((b) => !b.skip_safety_backup || b.force, 'skip_safety_backup needs "force": true'),
);

export async function restoreHandler(c: Context<AppEnv>): Promise<Response> {
  const backup_id = catalogedId(c);
  const b = await jsonBody(c, RestoreBody);
  return startJob(c, 'backup.restore', {
    backup_id,
    ...(b.passphrase ? { passphrase: b.passphrase } : {}),
    force: b.force,
    skip_safety_backup: b.skip_safety_backup,
    accept_db_change: b.accept_db_change,
  });
}
