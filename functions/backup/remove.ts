// Removing a backup (file, sidecars, row) and the retention policy that decides which to remove.
// Shared by DELETE /api/phpborg-backup/:id, `keeper backup delete` and the backup task's last step.
import { rm } from 'node:fs/promises';
import type { Ledger } from '../../state/ledger.ts';
import type { Actor } from '../../runtime/task.ts';
import { deleteBackupRow, lastSucceededBackup, listBackups, usedBy, type BackupRow } from '../../state/catalog.ts';
import { updatesWithBackup } from '../../state/updates.ts';
import { audit } from '../../state/audit.ts';
import { basename, dirname, isAbsolute } from 'node:path';
import { parseArchiveFileName, sidecarPaths } from '../../archive/format.ts';
import { errorMessage } from '../../runtime/error-message.ts';

export class BackupRemovalRefused extends Error {
  constructor(
    readonly code: 'pinned' | 'in_use' | 'creating' | 'unsafe_path',
    message: string,
    readonly jobId?: string,
  ) {
    super(message);
    this.name = 'BackupRemovalRefused';
  }
}

/** Why a backup cannot be removed now, or null. */
export function removalBlocker(ledger: Ledger, row: BackupRow): BackupRemovalRefused | null {
  if (row.pinned) {
    return new BackupRemovalRefused('pinned', `backup ${row.id} (${row.filename}) is pinned (e.g. kept for an update rollback); unpin it first`);
  }
  const job = usedBy(ledger, row.id);
  if (job) return new BackupRemovalRefused('in_use', `backup ${row.id} (${row.filename}) is in use by job ${job}; try again when it ends`, job);
  if (row.status === 'creating') return new BackupRemovalRefused('creating', `backup ${row.id} is still being created`);
  return null;
}

/** What deleting a backup would cost beyond the file itself: a stable code, its parameters, a sentence. */
export interface DeletionWarning {
  code: 'rollback_point' | 'newest_good';
  params: Record<string, string | number>;
  message: string;
}

export function deletionWarnings(ledger: Ledger, row: BackupRow): DeletionWarning[] {
  const out: DeletionWarning[] = [];
  for (const u of updatesWithBackup(ledger, row.id)) {
    const to = u.to_version ?? u.to_commit?.slice(0, 7) ?? '?';
    out.push({
      code: 'rollback_point',
      params: { update_id: u.id, to },
      message: `it is the rollback point of update ${u.id} (to ${to}): without it that update cannot be rolled back`,
    });
  }
  if (row.status === 'succeeded' && lastSucceededBackup(ledger)?.id === row.id) {
    out.push({ code: 'newest_good', params: {}, message: 'it is the newest good backup' });
  }
  return out;
}

/**
 * Whether `f` is the archive at `archive` (an absolute path with a keeper archive name) or its
 * .sha256/.json sidecar beside it. Retention runs in the root helper and the ledger is writable by
 * the runner's user: a row must never be able to make root delete any other file.
 */
export function isArchiveOwnFile(archive: string, f: string): boolean {
  const name = basename(archive);
  if (!isAbsolute(archive) || !parseArchiveFileName(name) || archive.split('/').includes('..')) return false;
  return dirname(f) === dirname(archive) && [name, `${name}.sha256`, `${name}.json`].includes(basename(f));
}

/** Deletes the archive, its sidecars and its row; audit-logged. Throws BackupRemovalRefused. */
export async function removeBackup(ledger: Ledger, row: BackupRow, actor: Actor, reason: 'delete' | 'retention', now = new Date()): Promise<void> {
  const blocker = removalBlocker(ledger, row);
  if (blocker) throw blocker;
  const side = sidecarPaths(row.filepath);
  const files = [row.filepath, row.sha256_path ?? side.sha256, row.json_path ?? side.json];
  const bad = files.find((f) => !isArchiveOwnFile(row.filepath, f));
  if (bad !== undefined) {
    throw new BackupRemovalRefused('unsafe_path', `backup ${row.id}: ${bad} is not a keeper archive or one of its sidecars; nothing was deleted (check the catalog row)`);
  }
  for (const f of files) await rm(f, { force: true });
  deleteBackupRow(ledger, row.id);
  audit(
    ledger,
    {
      actor,
      action: reason === 'retention' ? 'backup.retention_delete' : 'backup.delete',
      target: String(row.id),
      outcome: 'succeeded',
      details: { filename: row.filename, backup_type: row.backup_type, size_bytes: row.size_bytes, created_at: row.created_at },
    },
    now,
  );
}

export interface RetentionPlan {
  delete: BackupRow[];
  /** kept beyond the count, and why */
  protected: { id: number; reason: 'newest_success' | 'newest_pre_update' | 'pinned' | 'in_use' }[];
}

/**
 * Keeps the newest `keep` succeeded backups of each type. Beyond those, never deletes the newest
 * successful backup, the newest pre_update backup, a pinned one, or one an operation is using.
 * `rows` newest first in catalogue order (listBackups with order 'catalogued').
 */
export function planRetention(rows: BackupRow[], keep: number, inUse: (id: number) => boolean): RetentionPlan {
  const ok = rows.filter((r) => r.status === 'succeeded');
  const newestSuccess = ok[0]?.id;
  const newestPreUpdate = ok.find((r) => r.backup_type === 'pre_update')?.id;
  const plan: RetentionPlan = { delete: [], protected: [] };
  const seen = new Map<string, number>();
  for (const r of ok) {
    const n = (seen.get(r.backup_type) ?? 0) + 1;
    seen.set(r.backup_type, n);
    if (n <= keep) continue;
    const reason =
      r.id === newestSuccess ? 'newest_success' : r.id === newestPreUpdate ? 'newest_pre_update' : r.pinned ? 'pinned' : inUse(r.id) ? 'in_use' : null;
    if (reason) plan.protected.push({ id: r.id, reason });
    else plan.delete.push(r);
  }
  return plan;
}

/** Applies the retention policy; returns what was deleted (and what failed to be). */
export async function applyRetention(
  ledger: Ledger,
  keep: number,
  actor: Actor,
  opts: { exceptJob?: string; now?: Date } = {},
): Promise<{ deleted: { id: number; filename: string }[]; protected: RetentionPlan['protected']; errors: string[] }> {
  // insertion order, never the archives' own dates: an upload dated 2099 must not outrank real backups
  const rows = listBackups(ledger, { order: 'catalogued' });
  const plan = planRetention(rows, keep, (id) => {
    const row = rows.find((r) => r.id === id);
    // the running job's own backup is never a candidate, whatever it claims
    if (opts.exceptJob && row?.job_id === opts.exceptJob) return true;
    const job = usedBy(ledger, id);
    return job !== null && job !== opts.exceptJob;
  });
  const deleted: { id: number; filename: string }[] = [];
  const errors: string[] = [];
  for (const r of plan.delete) {
    try {
      await removeBackup(ledger, r, actor, 'retention', opts.now);
      deleted.push({ id: r.id, filename: r.filename });
    } catch (e) {
      errors.push(`${r.filename}: ${errorMessage(e)}`);
    }
  }
  return { deleted, protected: plan.protected, errors };
}
