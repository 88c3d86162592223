// The backup catalog: phpborg_backups rows in the ledger (phpBorg's own columns plus status, MAC,
// sidecar paths, origin, pinned, maintenance window). A row is inserted `creating` before any work
// and marked `succeeded` only once the archive is renamed into place and its sidecars are written.
import type { Ledger } from './ledger.ts';
import { BACKUP_TYPES, type ArchiveMetadata } from '../archive/format.ts';

export type BackupStatus = 'creating' | 'succeeded' | 'failed';

/** A catalog row: the completed fields (hash unknown until then), who made it, and its state. */
export interface BackupRow extends Omit<CompletedBackup, 'hash_sha256'> {
  id: number;
  filename: string;
  filepath: string;
  encrypted: boolean;
  hash_sha256: string | null;
  created_at: string;
  created_by: number | null;
  created_by_name: string | null;
  backup_type: string;
  notes: string | null;
  status: BackupStatus;
  origin: string;
  pinned: boolean;
  job_id: string | null;
  /** the last restore drill: null = never drilled */
  drill_status: DrillStatus | null;
  drill_at: string | null;
  /** why the last drill failed */
  drill_error: string | null;
}

export type DrillStatus = 'passed' | 'failed';

/** A row as the list shows it: the row plus a human size. */
export type BackupListItem = BackupRow & { size_human: string };

type Raw = Omit<BackupRow, 'encrypted' | 'pinned'> & { encrypted: number; pinned: number };
const fromRaw = (r: Raw): BackupRow => ({ ...r, encrypted: !!r.encrypted, pinned: !!r.pinned });

/** 1536 → "1.5 KiB"; binary units, one decimal above bytes. */
export function sizeHuman(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let n = bytes;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

export interface NewBackup {
  filename: string;
  filepath: string;
  backup_type: string;
  notes?: string | null;
  encrypted: boolean;
  created_at: string;
  created_by: number | null;
  created_by_name: string | null;
  job_id?: string | null;
  origin?: string;
  status?: BackupStatus;
}

export function insertBackup(ledger: Ledger, b: NewBackup): number {
  const r = ledger
    .prepare(
      `INSERT INTO phpborg_backups (filename, filepath, backup_type, notes, encrypted, created_at, created_by, created_by_name, job_id, origin, status)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(
      b.filename,
      b.filepath,
      b.backup_type,
      b.notes ?? null,
      b.encrypted ? 1 : 0,
      b.created_at,
      b.created_by,
      b.created_by_name,
      b.job_id ?? null,
      b.origin ?? 'local',
      b.status ?? 'creating',
    );
  return Number(r.lastInsertRowid);
}

/** The versions an archive's metadata records. */
type RecordedVersions = Pick<ArchiveMetadata, 'phpborg_version' | 'git_commit' | 'php_version' | 'mysql_version' | 'node_version' | 'borg_version'>;

/** Fields known once the archive is complete: the archive's own, and the versions its metadata records. */
export interface CompletedBackup extends RecordedVersions {
  size_bytes: number;
  hash_sha256: string;
  mac: string | null;
  files_count: number | null;
  database_size_bytes: number | null;
  maintenance_window_ms: number | null;
  sha256_path: string | null;
  json_path: string | null;
}

const COMPLETED_COLS: (keyof CompletedBackup)[] = [
  'size_bytes', 'hash_sha256', 'mac', 'phpborg_version', 'git_commit', 'php_version', 'mysql_version', 'node_version',
  'borg_version', 'files_count', 'database_size_bytes', 'maintenance_window_ms', 'sha256_path', 'json_path',
];

export function markSucceeded(ledger: Ledger, id: number, c: CompletedBackup): void {
  const sets = COMPLETED_COLS.map((k) => `${k} = @${k}`).join(', ');
  ledger.prepare(`UPDATE phpborg_backups SET ${sets}, status = 'succeeded' WHERE id = @id`).run({ ...c, id });
}

/** What the catalog takes from an archive's metadata (a missing field, or no metadata at all, is null). */
export type ArchiveFacts = Partial<
  Pick<ArchiveMetadata, 'phpborg_version' | 'git_commit' | 'php_version' | 'mysql_version' | 'node_version' | 'borg_version' | 'files_count' | 'database_size_bytes' | 'maintenance_window_ms'>
>;

/** The completed row of an archive: its file (size, hashes, sidecar paths) and what its metadata says. */
export function completedBackup(
  file: { size_bytes: number; sha256: string; mac: string | null; sha256_path: string | null; json_path: string | null },
  md: ArchiveFacts | null,
): CompletedBackup {
  return {
    size_bytes: file.size_bytes,
    hash_sha256: file.sha256,
    mac: file.mac,
    phpborg_version: md?.phpborg_version ?? null,
    git_commit: md?.git_commit ?? null,
    php_version: md?.php_version ?? null,
    mysql_version: md?.mysql_version ?? null,
    node_version: md?.node_version ?? null,
    borg_version: md?.borg_version ?? null,
    files_count: md?.files_count ?? null,
    database_size_bytes: md?.database_size_bytes ?? null,
    maintenance_window_ms: md?.maintenance_window_ms ?? null,
    sha256_path: file.sha256_path,
    json_path: file.json_path,
  };
}

/** An archive that is already complete (upload, recovered from its sidecar): inserted, then marked succeeded. */
export function insertCompleted(ledger: Ledger, b: NewBackup, c: CompletedBackup): number {
  const id = insertBackup(ledger, { ...b, status: 'creating' });
  markSucceeded(ledger, id, c);
  return id;
}

/** A failed attempt stays listed (status failed) so the history is truthful; its file is gone. */
export function markFailed(ledger: Ledger, id: number, fields: Partial<Pick<CompletedBackup, 'maintenance_window_ms'>> = {}): void {
  ledger
    .prepare(`UPDATE phpborg_backups SET status = 'failed', maintenance_window_ms = COALESCE(?, maintenance_window_ms) WHERE id = ?`)
    .run(fields.maintenance_window_ms ?? null, id);
}

/** Catalog rows a job left `creating` (its process died mid-backup) become failed. */
export function failUnfinished(ledger: Ledger, jobId: string): void {
  ledger.prepare("UPDATE phpborg_backups SET status = 'failed' WHERE job_id = ? AND status = 'creating'").run(jobId);
}

/** A row's notes, once the backup knows more than when it started (its database was not dumped). */
export function setBackupNotes(ledger: Ledger, id: number, notes: string | null): void {
  ledger.prepare('UPDATE phpborg_backups SET notes = ? WHERE id = ?').run(notes, id);
}

export function getBackup(ledger: Ledger, id: number): BackupRow | null {
  const r = ledger.prepare('SELECT * FROM phpborg_backups WHERE id = ?').get(id) as Raw | undefined;
  return r ? fromRaw(r) : null;
}

export function getBackupByFilename(ledger: Ledger, filename: string): BackupRow | null {
  const r = ledger.prepare('SELECT * FROM phpborg_backups WHERE filename = ?').get(filename) as Raw | undefined;
  return r ? fromRaw(r) : null;
}

/** The backup that succeeded last as the catalog saw it (insertion order: an archive's own date is only a claim), or null. */
export function lastSucceededBackup(ledger: Ledger): BackupRow | null {
  const r = ledger.prepare("SELECT * FROM phpborg_backups WHERE status = 'succeeded' ORDER BY id DESC LIMIT 1").get() as Raw | undefined;
  return r ? fromRaw(r) : null;
}

/**
 * Newest first: by created_at (the archive's date, what people look for), then id; `catalogued`
 * orders by insertion alone — what retention uses, since an uploaded archive may claim any date.
 */
export function listBackups(ledger: Ledger, filter: { type?: string; status?: BackupStatus; order?: 'date' | 'catalogued' } = {}): BackupListItem[] {
  const where: string[] = [];
  const args: unknown[] = [];
  if (filter.type) (where.push('backup_type = ?'), args.push(filter.type));
  if (filter.status) (where.push('status = ?'), args.push(filter.status));
  const sql = `SELECT * FROM phpborg_backups ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY ${filter.order === 'catalogued' ? 'id DESC' : 'created_at DESC, id DESC'}`;
  return (ledger.prepare(sql).all(...args) as Raw[]).map((r) => {
    const row = fromRaw(r);
    return { ...row, size_human: sizeHuman(row.size_bytes) };
  });
}

export function deleteBackupRow(ledger: Ledger, id: number): void {
  ledger.transaction(() => {
    ledger.prepare('DELETE FROM download_tokens WHERE backup_id = ?').run(id);
    ledger.prepare('DELETE FROM phpborg_backups WHERE id = ?').run(id);
  })();
}

export function setPinned(ledger: Ledger, id: number, pinned: boolean): void {
  ledger.prepare('UPDATE phpborg_backups SET pinned = ? WHERE id = ?').run(pinned ? 1 : 0, id);
}

/**
 * The id of a queued or running job using this backup: the one creating it, or any job whose
 * parameters name it as `backup_id`, or its archive as `file` (restore, verify, rollback). null when unused.
 */
export function usedBy(ledger: Ledger, id: number): string | null {
  const row = ledger
    .prepare(
      `SELECT j.id FROM jobs j WHERE j.status IN ('queued', 'running') AND (
         j.id = (SELECT job_id FROM phpborg_backups WHERE id = ? AND status = 'creating')
         OR (json_valid(j.params_json) AND CAST(json_extract(j.params_json, '$.backup_id') AS INTEGER) = ?)
         OR (json_valid(j.params_json) AND json_extract(j.params_json, '$.file') = (SELECT filepath FROM phpborg_backups WHERE id = ?))
       ) LIMIT 1`,
    )
    .get(id, id, id) as { id: string } | undefined;
  return row?.id ?? null;
}

/** Records a restore drill's verdict on its backup (the newest verdict replaces the previous one). */
export function recordDrill(ledger: Ledger, id: number, d: { status: DrillStatus; at: string; error?: string | null }): void {
  ledger.prepare('UPDATE phpborg_backups SET drill_status = ?, drill_at = ?, drill_error = ? WHERE id = ?').run(d.status, d.at, d.status === 'failed' ? (d.error ?? 'failed') : null, id);
}

/** When a backup was last proven restorable by a drill (the newest passed drill of any backup still catalogued). */
export function lastProvenRestorable(ledger: Ledger): { id: number; filename: string; drill_at: string } | null {
  const r = ledger
    .prepare(`SELECT id, filename, drill_at FROM phpborg_backups WHERE drill_status = 'passed' AND drill_at IS NOT NULL ORDER BY drill_at DESC, id DESC LIMIT 1`)
    .get() as { id: number; filename: string; drill_at: string } | undefined;
  return r ?? null;
}

export interface CatalogStats {
  total: number;
  by_type: Record<string, number>;
  total_size_bytes: number;
  total_size_human: string;
  encrypted: number;
  failed: number;
  /** succeeded backups that came in through an upload (their contents and date are the uploader's claim) */
  uploaded: number;
  last_success: { id: number; filename: string; created_at: string; backup_type: string } | null;
  /** the newest passed restore drill */
  last_proven_restorable: { id: number; filename: string; drill_at: string } | null;
}

/** Counts over succeeded backups (failed attempts counted apart). */
export function catalogStats(ledger: Ledger): CatalogStats {
  const ok = ledger
    .prepare(`SELECT COUNT(*) AS n, COALESCE(SUM(size_bytes), 0) AS size, COALESCE(SUM(encrypted), 0) AS enc FROM phpborg_backups WHERE status = 'succeeded'`)
    .get() as { n: number; size: number; enc: number };
  const types = ledger
    .prepare(`SELECT backup_type AS t, COUNT(*) AS n FROM phpborg_backups WHERE status = 'succeeded' GROUP BY backup_type ORDER BY backup_type`)
    .all() as { t: string; n: number }[];
  const failed = (ledger.prepare(`SELECT COUNT(*) AS n FROM phpborg_backups WHERE status = 'failed'`).get() as { n: number }).n;
  const uploaded = (ledger.prepare(`SELECT COUNT(*) AS n FROM phpborg_backups WHERE status = 'succeeded' AND origin = 'uploaded'`).get() as { n: number }).n;
  const last = ledger
    .prepare(`SELECT id, filename, created_at, backup_type FROM phpborg_backups WHERE status = 'succeeded' ORDER BY id DESC LIMIT 1`)
    .get() as CatalogStats['last_success'] | undefined;
  const by_type: Record<string, number> = {};
  for (const t of BACKUP_TYPES) by_type[t] = 0;
  for (const t of types) by_type[t.t] = t.n;
  return {
    total: ok.n,
    by_type,
    total_size_bytes: ok.size,
    total_size_human: sizeHuman(ok.size),
    encrypted: ok.enc,
    failed,
    uploaded,
    last_success: last ?? null,
    last_proven_restorable: lastProvenRestorable(ledger),
  };
}
