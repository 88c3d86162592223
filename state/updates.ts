// The update history (ledger table update_history): one row per update attempt or manual rollback.
// It lives in the ledger, so restoring a pre-update database dump never erases it.
import type { Ledger } from './ledger.ts';

export type UpdateStatus = 'running' | 'succeeded' | 'rolled_back' | 'failed';
export type UpdateKind = 'update' | 'rollback';

export interface UpdateRow {
  id: number;
  kind: UpdateKind;
  parent_id: number | null;
  job_id: string | null;
  from_commit: string;
  from_version: string | null;
  to_commit: string | null;
  to_version: string | null;
  target: string | null;
  backup_id: number | null;
  status: UpdateStatus;
  failed_step: string | null;
  error: string | null;
  actor_id: number | null;
  actor_name: string | null;
  started_at: string;
  finished_at: string | null;
  details: Record<string, unknown> | null;
}

type Raw = Omit<UpdateRow, 'details'> & { details_json: string | null };

function fromRaw(r: Raw): UpdateRow {
  const { details_json, ...rest } = r;
  return { ...rest, details: details_json ? (JSON.parse(details_json) as Record<string, unknown>) : null };
}

/** A new row: `running`, kind `update` and no parent unless told. */
export type NewUpdate = Pick<
  UpdateRow,
  'job_id' | 'from_commit' | 'from_version' | 'to_commit' | 'to_version' | 'target' | 'backup_id' | 'actor_id' | 'actor_name' | 'started_at'
> &
  Partial<Pick<UpdateRow, 'kind' | 'parent_id'>>;

export function insertUpdate(db: Ledger, u: NewUpdate): number {
  const r = db
    .prepare(
      `INSERT INTO update_history (kind, parent_id, job_id, from_commit, from_version, to_commit, to_version, target,
        backup_id, status, actor_id, actor_name, started_at)
       VALUES (@kind, @parent_id, @job_id, @from_commit, @from_version, @to_commit, @to_version, @target,
        @backup_id, 'running', @actor_id, @actor_name, @started_at)`,
    )
    .run({ kind: 'update', parent_id: null, ...u });
  return Number(r.lastInsertRowid);
}

export interface UpdateEnd {
  status: Exclude<UpdateStatus, 'running'>;
  finished_at: string;
  failed_step?: string | null;
  error?: string | null;
  to_commit?: string | null;
  to_version?: string | null;
  details?: Record<string, unknown> | null;
}

export function finishUpdate(db: Ledger, id: number, end: UpdateEnd): void {
  db.prepare(
    `UPDATE update_history SET status = @status, finished_at = @finished_at, failed_step = @failed_step, error = @error,
       to_commit = COALESCE(@to_commit, to_commit), to_version = COALESCE(@to_version, to_version),
       details_json = COALESCE(@details_json, details_json)
     WHERE id = @id`,
  ).run({
    id,
    status: end.status,
    finished_at: end.finished_at,
    failed_step: end.failed_step ?? null,
    error: end.error ?? null,
    to_commit: end.to_commit ?? null,
    to_version: end.to_version ?? null,
    details_json: end.details ? JSON.stringify(end.details) : null,
  });
}

export function getUpdate(db: Ledger, id: number): UpdateRow | null {
  const r = db.prepare('SELECT * FROM update_history WHERE id = ?').get(id) as Raw | undefined;
  return r ? fromRaw(r) : null;
}

/** The newest row written by job `jobId` (an update job writes one), or null. */
export function updateOfJob(db: Ledger, jobId: string): UpdateRow | null {
  const r = db.prepare('SELECT * FROM update_history WHERE job_id = ? ORDER BY id DESC LIMIT 1').get(jobId) as Raw | undefined;
  return r ? fromRaw(r) : null;
}

export function listUpdates(db: Ledger, opts: { limit?: number; offset?: number } = {}): { total: number; items: UpdateRow[] } {
  const total = (db.prepare('SELECT COUNT(*) AS n FROM update_history').get() as { n: number }).n;
  const rows = db
    .prepare('SELECT * FROM update_history ORDER BY id DESC LIMIT ? OFFSET ?')
    .all(opts.limit ?? 50, opts.offset ?? 0) as Raw[];
  return { total, items: rows.map(fromRaw) };
}

/** The newest update that succeeded, if any. */
export function lastSucceededUpdate(db: Ledger): UpdateRow | null {
  const r = db
    .prepare("SELECT * FROM update_history WHERE kind = 'update' AND status = 'succeeded' ORDER BY id DESC LIMIT 1")
    .get() as Raw | undefined;
  return r ? fromRaw(r) : null;
}

/** Updates whose pre-update backup is `backupId` (their rollback point), newest first. */
export function updatesWithBackup(db: Ledger, backupId: number): UpdateRow[] {
  return (db.prepare("SELECT * FROM update_history WHERE kind = 'update' AND backup_id = ? ORDER BY id DESC").all(backupId) as Raw[]).map(fromRaw);
}

/** Backup ids of pre-update backups referenced by earlier history rows (to unpin after a success). */
export function olderUpdateBackupIds(db: Ledger, beforeId: number): number[] {
  return (
    db
      .prepare("SELECT DISTINCT backup_id AS id FROM update_history WHERE kind = 'update' AND id < ? AND backup_id IS NOT NULL")
      .all(beforeId) as { id: number }[]
  ).map((r) => r.id);
}

/**
 * History rows left `running` by a helper that is gone (killed, machine rebooted) become `failed`, so
 * the history never shows a ghost update. A row whose helper still runs is left alone (an orphaned
 * helper finishes on its own and records the truth). Returns the ids closed.
 */
export function closeOrphanedUpdates(db: Ledger, at: string, alive: (pid: number) => boolean): number[] {
  const rows = db
    .prepare(
      `SELECT u.id, j.status AS job_status, j.helper_pid AS pid FROM update_history u LEFT JOIN jobs j ON j.id = u.job_id
       WHERE u.status = 'running'`,
    )
    .all() as { id: number; job_status: string | null; pid: number | null }[];
  const closed: number[] = [];
  for (const r of rows) {
    const jobRunning = r.job_status === 'queued' || r.job_status === 'running';
    if (r.pid !== null && alive(r.pid)) continue;
    if (jobRunning && r.pid === null) continue;
    finishUpdate(db, r.id, {
      status: 'failed',
      finished_at: at,
      error:
        'interrupted: the helper stopped before the update finished; the install may be half-updated. ' +
        'Check it (keeper update status, keeper status) and roll back with keeper update rollback ' + r.id,
    });
    closed.push(r.id);
  }
  return closed;
}

// Last time the remote was fetched, kept in keeper's settings table.
const LAST_CHECK_KEY = 'update.last_check';

export interface LastCheck {
  at: string;
  ok: boolean;
  error?: string;
}

export function setLastCheck(db: Ledger, check: LastCheck): void {
  db.prepare(
    `INSERT INTO settings (key, value_json, updated_at) VALUES (?, ?, ?)
     ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at`,
  ).run(LAST_CHECK_KEY, JSON.stringify(check), check.at);
}

export function getLastCheck(db: Ledger): LastCheck | null {
  const r = db.prepare('SELECT value_json FROM settings WHERE key = ?').get(LAST_CHECK_KEY) as { value_json: string } | undefined;
  if (!r) return null;
  try {
    return JSON.parse(r.value_json) as LastCheck;
  } catch {
    return null;
  }
}
