// Off-site copies in the ledger: one row per (backup, target) with its state
// pending → copied → verified, or failed with the error and when the next automatic attempt is due.
import type { Ledger } from './ledger.ts';

export type OffsiteStatus = 'pending' | 'copied' | 'verified' | 'failed';

export interface OffsiteCopy {
  backup_id: number;
  target: string;
  filename: string;
  sha256: string | null;
  size_bytes: number | null;
  status: OffsiteStatus;
  error_code: string | null;
  error: string | null;
  /** how the arrival was checked: remote (sha256sum / rclone hashsum) or read_back */
  method: string | null;
  attempts: number;
  next_attempt_at: string | null;
  created_at: string;
  updated_at: string;
  verified_at: string | null;
  /** set when the target's retention deleted the remote copy */
  removed_at: string | null;
}

/** Automatic attempts per backup and target; after that only `keeper offsite push` / "copy now" retries. */
export const MAX_AUTO_ATTEMPTS = 6;

/** Back-off after the n-th failed attempt: 5 min, 15 min, 45 min … capped at 12 h. */
export function backoffMs(attempts: number): number {
  return Math.min(5 * 60_000 * 3 ** Math.max(0, attempts - 1), 12 * 3600_000);
}

export function getCopy(ledger: Ledger, backupId: number, target: string): OffsiteCopy | null {
  return (ledger.prepare('SELECT * FROM offsite_copies WHERE backup_id = ? AND target = ?').get(backupId, target) as OffsiteCopy | undefined) ?? null;
}

/** The row of a copy about to start (created pending, or an earlier one set back to pending). */
export function startCopy(ledger: Ledger, c: { backup_id: number; target: string; filename: string; sha256: string | null; size_bytes: number | null }, now = new Date()): void {
  const at = now.toISOString();
  ledger
    .prepare(
      `INSERT INTO offsite_copies (backup_id, target, filename, sha256, size_bytes, status, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)
       ON CONFLICT (backup_id, target) DO UPDATE SET status = 'pending', filename = excluded.filename, sha256 = excluded.sha256,
         size_bytes = excluded.size_bytes, updated_at = excluded.updated_at, removed_at = NULL`,
    )
    .run(c.backup_id, c.target, c.filename, c.sha256, c.size_bytes, at, at);
}

export function markCopied(ledger: Ledger, backupId: number, target: string, now = new Date()): void {
  ledger.prepare("UPDATE offsite_copies SET status = 'copied', error = NULL, error_code = NULL, updated_at = ? WHERE backup_id = ? AND target = ?").run(now.toISOString(), backupId, target);
}

export function markVerified(ledger: Ledger, backupId: number, target: string, method: string, now = new Date()): void {
  const at = now.toISOString();
  ledger
    .prepare(
      `UPDATE offsite_copies SET status = 'verified', method = ?, error = NULL, error_code = NULL, attempts = attempts + 1,
         next_attempt_at = NULL, verified_at = ?, updated_at = ? WHERE backup_id = ? AND target = ?`,
    )
    .run(method, at, at, backupId, target);
}

/** A failed attempt: the error, one more attempt counted, and when the next automatic one is due. */
export function markFailed(ledger: Ledger, backupId: number, target: string, code: string, error: string, now = new Date()): OffsiteCopy {
  const row = getCopy(ledger, backupId, target);
  const attempts = (row?.attempts ?? 0) + 1;
  const next = attempts >= MAX_AUTO_ATTEMPTS ? null : new Date(now.getTime() + backoffMs(attempts)).toISOString();
  ledger
    .prepare("UPDATE offsite_copies SET status = 'failed', error_code = ?, error = ?, attempts = ?, next_attempt_at = ?, updated_at = ? WHERE backup_id = ? AND target = ?")
    .run(code, error, attempts, next, now.toISOString(), backupId, target);
  return getCopy(ledger, backupId, target)!;
}

export function markRemoved(ledger: Ledger, target: string, filename: string, now = new Date()): void {
  ledger.prepare('UPDATE offsite_copies SET removed_at = ?, updated_at = ? WHERE target = ? AND filename = ?').run(now.toISOString(), now.toISOString(), target, filename);
}

/** Every copy row of these backups, grouped by backup id. */
export function copiesOf(ledger: Ledger, backupIds: number[]): Map<number, OffsiteCopy[]> {
  const m = new Map<number, OffsiteCopy[]>();
  if (!backupIds.length) return m;
  const rows = ledger
    .prepare(`SELECT * FROM offsite_copies WHERE backup_id IN (SELECT value FROM json_each(?)) ORDER BY target`)
    .all(JSON.stringify(backupIds)) as OffsiteCopy[];
  for (const r of rows) m.set(r.backup_id, [...(m.get(r.backup_id) ?? []), r]);
  return m;
}

/** Whether the automatic pass may try this copy now. */
export function due(row: OffsiteCopy | null, now = new Date()): boolean {
  if (!row) return true;
  if (row.status === 'verified' || row.removed_at) return false;
  if (row.status === 'pending' || row.status === 'copied') return true;
  return row.next_attempt_at !== null && row.next_attempt_at <= now.toISOString();
}

/**
 * The remote files this install put on `target` and has not removed: filename → SHA-256. Retention
 * deletes only these: a file with a keeper name that this ledger did not copy there is never touched.
 */
/** The SHA-256 this install recorded when it copied `filename` to `target`, if it did. */
export function copiedSha256(ledger: Ledger, target: string, filename: string): string | null {
  const r = ledger.prepare('SELECT sha256 FROM offsite_copies WHERE target = ? AND filename = ? AND sha256 IS NOT NULL').get(target, filename) as { sha256: string } | undefined;
  return r?.sha256 ?? null;
}

export function ownRemoteFiles(ledger: Ledger, target: string): Map<string, string> {
  const rows = ledger
    .prepare("SELECT filename, sha256 FROM offsite_copies WHERE target = ? AND removed_at IS NULL AND status IN ('copied', 'verified') AND sha256 IS NOT NULL")
    .all(target) as { filename: string; sha256: string }[];
  return new Map(rows.map((r) => [r.filename, r.sha256]));
}

export interface TargetSummary {
  last_success: string | null;
  verified: number;
  failed: number;
  pending: number;
  last_error: string | null;
}

export function targetSummary(ledger: Ledger, target: string): TargetSummary {
  const r = ledger
    .prepare(
      `SELECT MAX(verified_at) AS last_success,
         SUM(status = 'verified' AND removed_at IS NULL) AS verified,
         SUM(status = 'failed') AS failed,
         SUM(status IN ('pending', 'copied')) AS pending
       FROM offsite_copies WHERE target = ?`,
    )
    .get(target) as { last_success: string | null; verified: number | null; failed: number | null; pending: number | null };
  const e = ledger.prepare("SELECT error FROM offsite_copies WHERE target = ? AND status = 'failed' ORDER BY updated_at DESC LIMIT 1").get(target) as { error: string } | undefined;
  return { last_success: r.last_success, verified: r.verified ?? 0, failed: r.failed ?? 0, pending: r.pending ?? 0, last_error: e?.error ?? null };
}
