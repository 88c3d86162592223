// The shapes the pages read, normalised from the routes' JSON (tolerant of envelopes and of a
// boolean stored as 0/1 by SQLite).
export type BackupType = 'manual' | 'scheduled' | 'pre_update' | 'pre_restore' | 'pre_emergency_restore' | string;
export const BACKUP_TYPES: BackupType[] = ['manual', 'scheduled', 'pre_update', 'pre_restore', 'pre_emergency_restore'];

export interface Backup {
  id: number;
  filename: string;
  size_bytes: number;
  size_human?: string;
  backup_type: BackupType;
  phpborg_version: string | null;
  git_commit: string | null;
  encrypted: boolean;
  status: string;
  created_at: string;
  created_by_name?: string | null;
  notes?: string | null;
  origin?: string;
  pinned: boolean;
  pinned_reason?: string | null;
  in_use?: boolean;
  /** the last restore drill: null = never drilled */
  drill_status: 'passed' | 'failed' | null;
  drill_at: string | null;
  drill_error: string | null;
  /** the off-site copy per target: pending | copied | verified | failed (with the reason) */
  offsite: OffsiteCopy[];
}

export interface OffsiteCopy {
  target: string;
  status: string;
  error: string | null;
  removed: boolean;
}

/** An off-site target as the API shows it (never a secret). */
export interface OffsiteTargetView {
  name: string;
  kind: string;
  where: string;
  enabled: boolean;
  keep: number;
  last_success: string | null;
  failed: number;
  pending: number;
  last_error: string | null;
}

export interface Stats {
  total: number;
  by_type: Record<string, number>;
  total_size_bytes: number;
  encrypted: number;
  /** backups that came in through an upload */
  uploaded: number;
  last_success: { created_at: string; filename?: string; backup_type?: string } | null;
}

export interface BackupSettings {
  backup_storage_path: string;
  backup_encryption_enabled: boolean;
  backup_retention_count: number;
  backup_scheduled_enabled: boolean;
  backup_scheduled_day: string;
  backup_scheduled_time: string;
  backup_notify_email: boolean;
}

export interface SettingsView extends BackupSettings {
  passphrase_set: boolean;
  passphrase_fingerprint: string | null;
  next_run: string | null;
  timezone: string | null;
  /** whether a notification could be sent now, and why not (a code of runtime/mailer.ts) */
  smtp: { ok: boolean; code: string; reason: string };
}

export const DAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const;

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => !!x && typeof x === 'object' && !Array.isArray(x);
const bool = (x: unknown): boolean => x === true || x === 1 || x === '1' || x === 'true';
const num = (x: unknown, d = 0): number => (typeof x === 'number' ? x : typeof x === 'string' && x !== '' && !Number.isNaN(Number(x)) ? Number(x) : d);
const strOrNull = (x: unknown): string | null => (typeof x === 'string' && x !== '' ? x : null);

export function toBackup(x: unknown): Backup {
  const o = isObj(x) ? x : {};
  return {
    id: num(o.id),
    filename: String(o.filename ?? ''),
    size_bytes: num(o.size_bytes),
    size_human: typeof o.size_human === 'string' ? o.size_human : undefined,
    backup_type: String(o.backup_type ?? o.type ?? 'manual'),
    phpborg_version: strOrNull(o.phpborg_version ?? o.version),
    git_commit: strOrNull(o.git_commit),
    encrypted: bool(o.encrypted),
    status: String(o.status ?? 'succeeded'),
    created_at: String(o.created_at ?? ''),
    created_by_name: strOrNull(o.created_by_name),
    notes: strOrNull(o.notes),
    origin: typeof o.origin === 'string' ? o.origin : undefined,
    pinned: bool(o.pinned),
    pinned_reason: strOrNull(o.pinned_reason ?? o.pin_reason ?? o.protected_reason),
    in_use: bool(o.in_use),
    drill_status: o.drill_status === 'passed' || o.drill_status === 'failed' ? o.drill_status : null,
    drill_at: strOrNull(o.drill_at),
    drill_error: strOrNull(o.drill_error),
    offsite: Array.isArray(o.offsite)
      ? o.offsite.filter(isObj).map((c) => ({ target: String(c.target ?? ''), status: String(c.status ?? 'pending'), error: strOrNull(c.error), removed: !!c.removed_at }))
      : [],
  };
}

export function toOffsiteTargets(x: unknown): OffsiteTargetView[] {
  const list = isObj(x) && Array.isArray(x.targets) ? x.targets : [];
  return list.filter(isObj).map((t) => ({
    name: String(t.name ?? ''),
    kind: String(t.kind ?? ''),
    where: String(t.where ?? ''),
    enabled: bool(t.enabled),
    keep: num(t.keep),
    last_success: strOrNull(t.last_success),
    failed: num(t.failed),
    pending: num(t.pending),
    last_error: strOrNull(t.last_error),
  }));
}

/** The list route may answer an array, {backups: […]}, {items: […], total} or {data: …}. */
export function toBackupPage(x: unknown): { items: Backup[]; total: number | null } {
  if (Array.isArray(x)) return { items: x.map(toBackup), total: null };
  if (isObj(x)) {
    for (const k of ['backups', 'items', 'data', 'rows']) {
      const v = x[k];
      if (Array.isArray(v)) {
        const total = num(x.total ?? (isObj(x.pagination) ? x.pagination.total : undefined), -1);
        return { items: v.map(toBackup), total: total >= 0 ? total : null };
      }
      if (isObj(v)) return toBackupPage(v);
    }
  }
  return { items: [], total: 0 };
}

export function toStats(x: unknown): Stats {
  let o = isObj(x) ? x : {};
  if (isObj(o.stats)) o = o.stats;
  if (isObj(o.data)) o = o.data;
  const byType: Record<string, number> = {};
  const bt = o.by_type ?? o.per_type ?? o.types;
  if (isObj(bt)) for (const [k, v] of Object.entries(bt)) byType[k] = isObj(v) ? num(v.count) : num(v);
  else if (Array.isArray(bt)) for (const r of bt) if (isObj(r)) byType[String(r.backup_type ?? r.type)] = num(r.count);
  const ls = o.last_success ?? o.last_successful ?? o.latest;
  return {
    total: num(o.total ?? o.total_count ?? o.count),
    by_type: byType,
    total_size_bytes: num(o.total_size_bytes ?? o.total_size),
    encrypted: num(o.encrypted ?? o.encrypted_count),
    uploaded: num(o.uploaded),
    last_success: isObj(ls)
      ? { created_at: String(ls.created_at ?? ls.date ?? ''), filename: strOrNull(ls.filename) ?? undefined, backup_type: strOrNull(ls.backup_type) ?? undefined }
      : typeof ls === 'string'
        ? { created_at: ls }
        : null,
  };
}

/** GET settings: the values, plus passphrase {set, fingerprint} and the next scheduled run. */
export function toSettingsView(x: unknown): SettingsView {
  let o = isObj(x) ? x : {};
  if (isObj(o.data)) o = o.data;
  const s = isObj(o.settings) ? { ...o, ...o.settings } : o;
  const pp = s.backup_encryption_passphrase ?? s.passphrase;
  const ppObj = isObj(pp) ? pp : {};
  const sched = isObj(s.schedule) ? s.schedule : {};
  return {
    backup_storage_path: String(s.backup_storage_path ?? ''),
    backup_encryption_enabled: bool(s.backup_encryption_enabled),
    backup_retention_count: num(s.backup_retention_count, 3),
    backup_scheduled_enabled: bool(s.backup_scheduled_enabled),
    backup_scheduled_day: String(s.backup_scheduled_day ?? 'sunday'),
    backup_scheduled_time: String(s.backup_scheduled_time ?? '03:00'),
    backup_notify_email: bool(s.backup_notify_email),
    passphrase_set: bool(ppObj.set ?? s.backup_encryption_passphrase_set ?? s.passphrase_set),
    passphrase_fingerprint: strOrNull(ppObj.fingerprint ?? s.backup_encryption_passphrase_fingerprint ?? s.passphrase_fingerprint),
    next_run: strOrNull(s.next_run ?? s.next_scheduled_run ?? s.next_run_at ?? sched.next_run),
    timezone: strOrNull(s.timezone ?? sched.timezone),
    smtp: isObj(s.smtp) ? { ok: s.smtp.ok !== false, code: String(s.smtp.code ?? ''), reason: String(s.smtp.reason ?? '') } : { ok: true, code: '', reason: '' },
  };
}
