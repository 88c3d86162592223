// The backup catalog routes (admin): list, stats, one backup, delete. Thin: state/catalog.ts and
// functions/backup/remove.ts do the work.
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../../runtime/bindings.ts';
import { HttpError, queryParams } from '../../runtime/errors.ts';
import { catalogStats, getBackup, listBackups, sizeHuman, type BackupRow } from '../../state/catalog.ts';
import { BACKUP_TYPES } from '../../archive/format.ts';
import { BackupRemovalRefused, removeBackup } from './remove.ts';
import { offsiteStates } from '../offsite/routes.ts';

/** One backup as the API shows it: every column, plus the names the UI mock-up uses. */
export function backupView(r: BackupRow) {
  return { ...r, size_human: sizeHuman(r.size_bytes), type: r.backup_type, version: r.phpborg_version };
}

const ListQuery = v.object({
  type: v.optional(v.picklist(BACKUP_TYPES, `expected a backup type: ${BACKUP_TYPES.join(', ')}`)),
  status: v.optional(v.picklist(['creating', 'succeeded', 'failed'] as const, 'expected creating, succeeded or failed')),
  page: v.optional(v.pipe(v.string(), v.regex(/^[1-9]\d*$/, 'expected a page number from 1'), v.transform(Number))),
  per_page: v.optional(v.pipe(v.string(), v.regex(/^\d+$/, 'expected a number'), v.transform(Number), v.minValue(1), v.maxValue(500))),
});

/** GET /api/phpborg-backup/list?type=&status=&page=&per_page= — newest first. */
export function listHandler(c: Context<AppEnv>): Response {
  const q = queryParams(c, ListQuery);
  const all = listBackups(c.env.ledger, { type: q.type, status: q.status });
  const per_page = q.per_page ?? 500;
  const page = q.page ?? 1;
  const slice = all.slice((page - 1) * per_page, page * per_page);
  // each backup's off-site state per target, for the history table
  const offsite = offsiteStates(c.env.config, c.env.ledger, slice.map((b) => b.id));
  const items = slice.map((b) => ({ ...backupView(b), offsite: offsite.get(b.id) ?? [] }));
  return c.json({ items, total: all.length, page, per_page });
}

/** GET /api/phpborg-backup/stats */
export function statsHandler(c: Context<AppEnv>): Response {
  return c.json(catalogStats(c.env.ledger));
}

/** The :id path parameter as a backup row, or 404. */
export function backupParam(c: Context<AppEnv>): BackupRow {
  const raw = c.req.param('id') ?? '';
  if (!/^[1-9]\d{0,15}$/.test(raw)) throw new HttpError(422, 'invalid_input', `id: expected a backup id (a positive whole number), got ${JSON.stringify(raw)}`, { fields: ['id'] });
  const row = getBackup(c.env.ledger, Number(raw));
  if (!row) throw new HttpError(404, 'not_found', `no backup ${raw}; GET /api/phpborg-backup/list shows the catalog`);
  return row;
}

/** GET /api/phpborg-backup/:id */
export function getHandler(c: Context<AppEnv>): Response {
  const b = backupParam(c);
  return c.json({ ...backupView(b), offsite: offsiteStates(c.env.config, c.env.ledger, [b.id]).get(b.id) ?? [] });
}

/** DELETE /api/phpborg-backup/:id — file, sidecars and row; 409 for a pinned or in-use backup. */
export async function deleteHandler(c: Context<AppEnv>): Promise<Response> {
  const row = backupParam(c);
  try {
    await removeBackup(c.env.ledger, row, c.var.actor, 'delete', c.env.clock.now());
  } catch (e) {
    if (e instanceof BackupRemovalRefused) {
      throw new HttpError(409, e.code, e.message, { id: row.id, ...(e.jobId ? { job_id: e.jobId } : {}) });
    }
    throw e;
  }
  return c.json({ deleted: true, id: row.id, filename: row.filename });
}
