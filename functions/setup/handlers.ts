// The setup wizard's routes: no phpBorg yet, so no admin token; the one-time setup token instead
// (functions/setup/state.ts), sent as `X-Setup-Token: <token>`; `?setup_token=` is accepted on the SSE
// events route only (EventSource cannot send headers; a token in a URL ends up in logs and history).
//   GET  /api/setup/status              → {initialized: false, reason}
//   POST /api/setup/restore             multipart `file` (+ `passphrase`) → 202 {job_id, status_url, events_url, archive}
//                                       (`archive`: what was checked before the job started — SHA-256, HMAC, metadata)
//   GET  /api/setup/jobs/:id            the setup job (setup.restore only)
//   GET  /api/setup/jobs/:id/events     its progress over SSE, like every job
// status and restore answer 403 without the token and, whatever the token, once the install is
// initialized; the job routes need the token only (the job ends with the install initialized).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../../runtime/bindings.ts';
import { HttpError } from '../../runtime/errors.ts';
import type { Actor } from '../../runtime/task.ts';
import { getJob } from '../../state/jobs.ts';
import { archiveFileName, checkIntegrity, ENTRY, isEncrypted, readHead } from '../../archive/index.ts';
import { receive } from '../backup/upload.ts';
import { startTask } from '../jobs/start.ts';
import { checkSetupToken, installState, setupTokenPath } from './state.ts';
import { errorMessage } from '../../runtime/error-message.ts';
import { databaseTargetProblem } from '../../runtime/db-guard.ts';
import { parseEnv } from '../../runtime/install.ts';
import { ensureOwnStorageDir } from '../../runtime/storage-path.ts';

const SETUP_ACTOR: Actor = { id: null, name: 'setup-wizard' };

function tokenOf(c: Context<AppEnv>, allowQuery: boolean): string | undefined {
  return c.req.header('x-setup-token') ?? (allowQuery ? c.req.query('setup_token') : undefined) ?? undefined;
}

async function requireToken(c: Context<AppEnv>, allowQuery = false): Promise<void> {
  if (!(await checkSetupToken(c.env.config, tokenOf(c, allowQuery)))) {
    throw new HttpError(
      403,
      'setup_token_required',
      `the setup wizard needs the one-time setup token the runner printed at start (also in ${setupTokenPath(c.env.config)}): send it as X-Setup-Token`,
    );
  }
}

/** status and restore: only while the install is not initialized, and only with the token. */
export const setupGuard = createMiddleware<AppEnv>(async (c, next) => {
  const s = await installState(c.env.config);
  if (s.initialized) {
    throw new HttpError(403, 'already_initialized', 'phpBorg is already installed here: the setup wizard is closed; sign in as an administrator instead');
  }
  await requireToken(c);
  c.set('actor', SETUP_ACTOR);
  await next();
});

/** the setup job's status and events: the token, and a setup.restore job. */
function jobGuard(allowQuery: boolean) {
  return createMiddleware<AppEnv>(async (c, next) => {
    await requireToken(c, allowQuery);
    const job = getJob(c.env.ledger, c.req.param('id') ?? '');
    if (!job || job.type !== 'setup.restore') throw new HttpError(404, 'not_found', `no setup job ${c.req.param('id')}`);
    c.set('actor', SETUP_ACTOR);
    await next();
  });
}

/** GET /api/setup/jobs/:id: the X-Setup-Token header only. */
export const setupJobGuard = jobGuard(false);
/** GET /api/setup/jobs/:id/events: the header, or `?setup_token=` for EventSource. */
export const setupEventsGuard = jobGuard(true);

export async function setupStatusHandler(c: Context<AppEnv>): Promise<Response> {
  const s = await installState(c.env.config);
  return c.json({ initialized: s.initialized, ...(s.reason ? { reason: s.reason } : {}) });
}

/**
 * Receives the archive (streamed to a 0600 temp file in the storage dir, size-limited), checks it
 * (hash, HMAC: a wrong passphrase or a corrupt file is refused here with 422 and nothing left behind),
 * gives it its canonical name, and starts the bare-metal restore as a job.
 */
export async function setupRestoreHandler(c: Context<AppEnv>): Promise<Response> {
  const { config } = c.env;
  let storage: string;
  try {
    storage = await ensureOwnStorageDir(config, config.paths.storage);
  } catch (e) {
    throw new HttpError(422, 'storage_unusable', `cannot use the storage directory: ${errorMessage(e)}`, { key: 'paths.storage' });
  }
  const tmp = join(storage, `.setup-${randomBytes(8).toString('hex')}.partial`);
  let final: string | null = null;
  try {
    const got = await receive(c, tmp, config.upload_max_bytes);
    if (got.size === 0) throw new HttpError(422, 'invalid_input', 'the uploaded file is empty');
    const encrypted = await isEncrypted(tmp);
    const passphrase = encrypted ? got.passphrase : null;
    if (encrypted && !passphrase) throw new HttpError(422, 'passphrase_required', 'the archive is encrypted: send its "passphrase" field too');
    const integrity = await checkIntegrity(tmp, { passphrase, expected: { sha256: got.sha256, size_bytes: got.size } });
    if (integrity.verdict !== 'ok') throw new HttpError(422, integrity.verdict, `the archive was refused: ${integrity.message}`);
    let head;
    try {
      head = await readHead(tmp, { passphrase });
    } catch (e) {
      throw new HttpError(422, 'not_a_keeper_archive', `not a phpborg-keeper archive: ${errorMessage(e)}`);
    }
    const envText = head.config.get(ENTRY.env);
    const archiveEnv = envText ? (() => {
      try {
        return parseEnv(envText.toString('utf8')).env;
      } catch {
        return null;
      }
    })() : null;
    const unsafe = archiveEnv ? databaseTargetProblem(archiveEnv) : null;
    if (unsafe) throw new HttpError(422, 'unsafe_database', unsafe);
    const name = archiveFileName(new Date(head.metadata.backup_date), head.metadata.backup_type);
    final = join(storage, name);
    if (existsSync(final)) {
      final = null;
      throw new HttpError(409, 'already_exists', `${name} already exists in ${storage}: restore that file from a terminal (keeper restore --fresh ${join(storage, name)}) or move it away and upload again`);
    }
    await rename(tmp, final);
    const jobId = startTask(c, 'setup.restore', { file: final, origin: 'uploaded', accept_db_change: got.acceptDbChange, ...(passphrase ? { passphrase } : {}) }, SETUP_ACTOR);
    // the wizard shows what was proven before anything is laid down
    const archive = {
      filename: name,
      size_bytes: integrity.size_bytes,
      sha256: integrity.sha256,
      encrypted,
      /** the HMAC was recomputed with the passphrase and matched (null: a plain archive has none) */
      hmac: encrypted ? (integrity.mac ? 'ok' : null) : null,
      backup_date: head.metadata.backup_date,
      backup_type: head.metadata.backup_type,
      phpborg_version: head.metadata.phpborg_version,
    };
    return c.json({ job_id: jobId, status_url: `/api/setup/jobs/${jobId}`, events_url: `/api/setup/jobs/${jobId}/events`, archive }, 202);
  } catch (e) {
    await rm(tmp, { force: true });
    if (final) await rm(final, { force: true });
    if (e instanceof HttpError) throw e;
    throw new HttpError(422, 'invalid_archive', `the upload was refused: ${errorMessage(e)}`);
  }
}
