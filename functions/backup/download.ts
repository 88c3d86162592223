// GET /api/phpborg-backup/:id/download streams the archive (Content-Length, Content-Disposition).
// A browser link cannot send a header, so POST /api/phpborg-backup/:id/download-token hands out a
// short-lived token for that one file, stored hashed in the ledger, accepted as ?token=.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { Context, Next } from 'hono';
import type { AppEnv } from '../../runtime/bindings.ts';
import type { Actor } from '../../runtime/task.ts';
import { requireAdmin } from '../../runtime/auth.ts';
import { HttpError } from '../../runtime/errors.ts';
import type { Ledger } from '../../state/ledger.ts';
import { audit } from '../../state/audit.ts';
import { getDownloadToken, insertDownloadToken } from '../../state/download-tokens.ts';
import { backupParam } from './catalog.ts';
import { errorMessage } from '../../runtime/error-message.ts';

export const DOWNLOAD_TOKEN_TTL_S = 300;

const hashToken = (t: string) => createHash('sha256').update(t).digest('hex');

export function issueDownloadToken(ledger: Ledger, backupId: number, actor: Actor, now: Date): { token: string; expires_at: string } {
  const token = randomBytes(32).toString('base64url');
  const expires_at = new Date(now.getTime() + DOWNLOAD_TOKEN_TTL_S * 1000).toISOString();
  insertDownloadToken(ledger, hashToken(token), { backup_id: backupId, expires_at, actor_id: actor.id, actor_name: actor.name }, now);
  return { token, expires_at };
}

/** The admin who asked for `token` when it opens backup `backupId` now, else null. */
export function checkDownloadToken(ledger: Ledger, backupId: number, token: string, now: Date): Actor | null {
  const row = getDownloadToken(ledger, hashToken(token));
  if (!row || row.backup_id !== backupId || row.expires_at <= now.toISOString()) return null;
  return { id: row.actor_id, name: row.actor_name ?? 'download-token' };
}

/** POST /api/phpborg-backup/:id/download-token → {token, url, expires_at} */
export function downloadTokenHandler(c: Context<AppEnv>): Response {
  const row = backupParam(c);
  if (row.status !== 'succeeded') throw new HttpError(409, 'not_available', `backup ${row.id} is ${row.status}: there is no file to download`);
  const t = issueDownloadToken(c.env.ledger, row.id, c.var.actor, c.env.clock.now());
  return c.json({ ...t, url: `/api/phpborg-backup/${row.id}/download?token=${encodeURIComponent(t.token)}` }, 201);
}

/** The download route's guard: a valid ?token= for this backup, else the admin bearer token. */
export async function downloadGuard(c: Context<AppEnv>, next: Next): Promise<Response | void> {
  const token = c.req.query('token');
  if (token === undefined) return requireAdmin(c, next);
  const id = Number(c.req.param('id'));
  const actor = Number.isSafeInteger(id) ? checkDownloadToken(c.env.ledger, id, token, c.env.clock.now()) : null;
  if (!actor) {
    throw new HttpError(401, 'invalid_token', 'the download link is invalid or expired; ask for a new one (POST /api/phpborg-backup/:id/download-token)');
  }
  c.set('actor', actor);
  await next();
}

/** GET /api/phpborg-backup/:id/download */
export async function downloadHandler(c: Context<AppEnv>): Promise<Response> {
  const row = backupParam(c);
  if (row.status !== 'succeeded') throw new HttpError(409, 'not_available', `backup ${row.id} is ${row.status}: there is no file to download`);
  let size: number;
  try {
    const st = await stat(row.filepath);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (e) {
    throw new HttpError(410, 'file_missing', `the archive of backup ${row.id} is not on disk any more (${row.filepath}): ${errorMessage(e)}`);
  }
  audit(c.env.ledger, { actor: c.var.actor, action: 'backup.download', target: String(row.id), outcome: 'started', details: { filename: row.filename } }, c.env.clock.now());
  const body = Readable.toWeb(createReadStream(row.filepath)) as ReadableStream<Uint8Array>;
  return new Response(body, {
    status: 200,
    headers: {
      'Content-Type': 'application/gzip',
      'Content-Length': String(size),
      'Content-Disposition': `attachment; filename="${row.filename.replace(/["\\]/g, '')}"`,
      'Cache-Control': 'no-store',
      'X-Content-SHA256': row.hash_sha256 ?? '',
    },
  });
}
