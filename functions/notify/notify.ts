// Mail notifications: turns a finished job (backup, restore, update, retention cleanup) into a
// NotifyEvent, renders it in the install's language and sends it. Whatever happens here never
// changes the job's outcome: a mail that cannot be sent is written to the audit log
// (action notify.email, outcome failed, the reason without secrets) and that is all.
import { readFileSync } from 'node:fs';
import * as v from 'valibot';
import type { KeeperConfig } from '../../runtime/config.ts';
import type { PhpborgDb } from '../../runtime/bindings.ts';
import type { Actor } from '../../runtime/task.ts';
import type { Ledger } from '../../state/ledger.ts';
import type { JobView } from '../../state/jobs.ts';
import { audit } from '../../state/audit.ts';
import { getBackup, getBackupByFilename, lastProvenRestorable, type BackupRow } from '../../state/catalog.ts';
import { getSettings } from '../../state/settings.ts';
import { updateOfJob } from '../../state/updates.ts';
import { appSecret } from '../../runtime/auth.ts';
import { installPrefs } from '../../runtime/locale.ts';
import { describeMailError, resolveSmtp, sendMail } from '../../runtime/mailer.ts';
import { renderMail, type BackupFacts, type NotifyEvent } from './templates.ts';
import { errorMessage } from '../../runtime/error-message.ts';

export const NOTIFY_ACTION = 'notify.email';

export interface NotifyDeps {
  config: KeeperConfig;
  ledger: Ledger;
  phpborg: PhpborgDb;
  now?: () => Date;
}

export type NotifyOutcome =
  | { status: 'sent'; to: string; subject: string; message_id: string }
  | { status: 'skipped'; reason: string }
  | { status: 'failed'; reason: string; /** why SMTP cannot be used at all (runtime/mailer.ts), when that is the cause */ code?: string };

export interface NotifyOptions {
  /** who the audit entry names */
  actor?: Actor;
  /** audit target, e.g. the job id */
  target?: string | null;
  /** send even when backup_notify_email is off (the test mail) */
  force?: boolean;
  /** another recipient than the configured one (the test mail) */
  to?: string;
  timeoutMs?: number;
}

const SYSTEM: Actor = { id: null, name: 'keeper' };

/** Renders and sends one event; never throws. */
export async function notify(d: NotifyDeps, event: NotifyEvent, opts: NotifyOptions = {}): Promise<NotifyOutcome> {
  const now = d.now ?? (() => new Date());
  const actor = opts.actor ?? SYSTEM;
  const record = (outcome: 'succeeded' | 'failed', details: Record<string, unknown>) => {
    try {
      audit(d.ledger, { actor, action: NOTIFY_ACTION, target: opts.target ?? null, outcome, details: { event: event.kind, ...details } }, now());
    } catch (e) {
      console.error(`[keeper] cannot audit mail: ${errorMessage(e)}`);
    }
  };
  try {
    if (!opts.force && !getSettings(d.ledger, d.config.paths.storage).backup_notify_email) {
      return { status: 'skipped', reason: 'backup_notify_email is off' };
    }
    const p = await installPrefs(d);
    const r = resolveSmtp(d.config, p.prefs, () => appSecret(d.config));
    if (!r.ok) {
      record('failed', { reason: r.reason });
      return { status: 'failed', reason: r.reason, code: r.code };
    }
    const link = p.prefs?.get('app.url')?.trim() ? `${p.prefs.get('app.url')!.trim().replace(/\/+$/, '')}/settings/backup` : null;
    const to = opts.to ?? r.smtp.to;
    const ev: NotifyEvent = event.kind === 'test' ? { ...event, from: r.smtp.from_email } : event;
    const mail = renderMail(ev, { lang: p.language, timezone: p.timezone, link });
    try {
      const info = await sendMail(r.smtp, { to, ...mail }, { timeoutMs: opts.timeoutMs });
      record('succeeded', { to, subject: mail.subject, smtp: `${r.smtp.host}:${r.smtp.port}`, source: r.smtp.source, language: p.language });
      return { status: 'sent', to, subject: mail.subject, message_id: info.messageId };
    } catch (e) {
      const reason = describeMailError(e, r.smtp);
      record('failed', { to, subject: mail.subject, smtp: `${r.smtp.host}:${r.smtp.port}`, source: r.smtp.source, reason });
      return { status: 'failed', reason };
    }
  } catch (e) {
    const reason = describeMailError(e, null);
    record('failed', { reason });
    return { status: 'failed', reason };
  }
}

// ---------- from a finished job to events ----------

const Obj = v.record(v.string(), v.unknown());
const asObj = (x: unknown): Record<string, unknown> => (v.is(Obj, x) ? x : {});
const str = (x: unknown): string | null => (typeof x === 'string' && x !== '' ? x : null);
const num = (x: unknown): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);
const strList = (x: unknown): string[] =>
  Array.isArray(x) ? x.map((e) => (typeof e === 'string' ? e : str(asObj(e).file) ?? str(asObj(e).filename))).filter((e): e is string => !!e) : [];

/** Table row counts from the archive's sidecar (<file>.json), when readable. */
function recordsFromSidecar(row: BackupRow | null, file: string | null): number | null {
  const path = row?.json_path ?? (row ? `${row.filepath}.json` : file ? `${file}.json` : null);
  if (!path) return null;
  try {
    const counts = asObj(asObj(asObj(JSON.parse(readFileSync(path, 'utf8'))).metadata).table_row_counts);
    const values = Object.values(counts).filter((n): n is number => typeof n === 'number');
    return values.length ? values.reduce((a, b) => a + b, 0) : null;
  } catch {
    return null;
  }
}

/** Everything known about a backup: the catalog row first, the job's result for what it lacks. */
export function backupFacts(ledger: Ledger, ref: { id?: unknown; file?: unknown }, result: Record<string, unknown> = {}): BackupFacts | null {
  let row: BackupRow | null = null;
  const id = num(ref.id);
  if (id !== null) row = getBackup(ledger, id);
  const fileRef = str(ref.file);
  if (!row && fileRef) row = getBackupByFilename(ledger, fileRef.split('/').pop()!);
  if (!row && !fileRef) return null;
  const file = row?.filename ?? fileRef!.split('/').pop()!;
  const location = row?.filepath ?? (fileRef?.startsWith('/') ? fileRef : null);
  return {
    file,
    location,
    size_bytes: row?.size_bytes ?? num(result.size_bytes),
    type: row?.backup_type ?? str(result.type) ?? str(result.backup_type),
    encrypted: row ? row.encrypted : typeof result.encrypted === 'boolean' ? result.encrypted : null,
    created_at: row?.created_at ?? null,
    created_by: row?.created_by_name ?? null,
    phpborg_version: row?.phpborg_version ?? null,
    database_size_bytes: row?.database_size_bytes ?? null,
    database_records: recordsFromSidecar(row, location),
    files_count: row?.files_count ?? num(result.files_count),
    sha256: row?.hash_sha256 ?? str(result.sha256),
    maintenance_window_ms: row?.maintenance_window_ms ?? num(result.maintenance_window_ms),
  };
}

/** Files deleted by retention, as a task reports them (result.retention.deleted, result.deleted…). */
export function deletedByRetention(result: Record<string, unknown>): string[] {
  const r = asObj(result.retention);
  return [...strList(r.deleted), ...strList(result.deleted), ...strList(result.retention_deleted), ...strList(result.pruned)];
}

function updateRow(ledger: Ledger, jobId: string): Record<string, unknown> | null {
  try {
    const r = updateOfJob(ledger, jobId);
    return r ? asObj(r) : null;
  } catch {
    return null;
  }
}

function rollbackOutcome(job: JobView): 'rolled_back' | 'rollback_failed' | 'not_needed' | 'unknown' {
  if (job.status === 'rolled_back') return 'rolled_back';
  const det = asObj(job.error?.details);
  const r = det.rollback ?? det.rollback_outcome ?? det.rolled_back;
  if (r === true || r === 'succeeded' || r === 'rolled_back' || r === 'ok') return 'rolled_back';
  if (r === false || r === 'failed' || r === 'rollback_failed') return 'rollback_failed';
  if (r === 'not_needed' || r === 'none' || r === 'untouched') return 'not_needed';
  return 'unknown';
}

/** This backup's off-site copy per target, from the backup result's `offsite` passes. */
function offsiteOfResult(result: Record<string, unknown>): { target: string; status: string; error?: string | null }[] {
  if (!Array.isArray(result.offsite)) return [];
  const id = result.id;
  return (result.offsite as { target?: unknown; copies?: unknown }[]).flatMap((t) => {
    const c = Array.isArray(t.copies) ? (t.copies as { backup_id?: unknown; status?: unknown; error?: unknown }[]).find((x) => x.backup_id === id) : undefined;
    return typeof t.target === 'string' && c ? [{ target: t.target, status: String(c.status), error: typeof c.error === 'string' ? c.error : null }] : [];
  });
}

/** The mails a finished job calls for (none for jobs that are not backup/restore/update). */
export function eventsForJob(ledger: Ledger, job: JobView, storageDefault: string): NotifyEvent[] {
  const params = asObj(job.params);
  const result = asObj(job.result);
  const at = job.finished_at ?? job.created_at;
  const who = job.actor.name;
  const failure = { step: job.error?.step ?? job.step ?? null, error: job.error?.message ?? `job ended ${job.status}` };
  const events: NotifyEvent[] = [];
  // interrupted: keeper stopped and the helper goes on alone; its real outcome is not known here
  if (job.status === 'interrupted' || job.status === 'queued' || job.status === 'running') return events;
  const settings = getSettings(ledger, storageDefault);
  const storage = settings.backup_storage_path;
  const retention = settings.backup_retention_count;

  if (job.type === 'backup.create') {
    if (job.status === 'succeeded') {
      const facts = backupFacts(ledger, { id: result.id ?? result.backup_id, file: result.file }, result);
      if (facts) {
        if (!facts.created_by) facts.created_by = who;
        events.push({ kind: 'backup_created', backup: facts, retention_count: retention, last_proven: lastProvenRestorable(ledger)?.drill_at ?? null, offsite: offsiteOfResult(result) });
      }
    } else {
      events.push({ kind: 'backup_failed', type: str(params.type) ?? 'manual', who, at, failure });
    }
    const deleted = deletedByRetention(result);
    if (deleted.length) events.push({ kind: 'retention_cleanup', at, deleted, retention_count: retention, location: storage });
  } else if (job.type === 'backup.restore' || job.type === 'setup.restore' || job.type === 'update.rollback') {
    // the RestoreResult: job result (restored / rolled_back) or the error's details (failed);
    // a manual update rollback is a restore of that update's pre-update backup
    const rr = job.status === 'failed' ? asObj(job.error?.details) : result;
    const update_id = job.type === 'update.rollback' ? (num(rr.update_id) ?? num(params.history_id)) : null;
    const of = update_id !== null ? { update_id } : {};
    const b = asObj(rr.backup);
    const ref = { id: b.id ?? params.backup_id ?? params.id, file: b.filename ?? params.file };
    const facts = backupFacts(ledger, ref, {});
    const safetyFile = str(asObj(rr.safety_backup).filename) ?? str(rr.safety_backup);
    if (job.status === 'succeeded') {
      events.push({ kind: 'restore_completed', backup: facts ?? { file: '—' }, who, at, safety_backup: safetyFile, ...of });
    } else {
      // the operation's own word: changed false = refused or undone before anything changed
      const changed = job.error?.changed;
      const rollback =
        job.status === 'rolled_back'
          ? 'rolled_back'
          : changed === true
            ? 'rollback_failed'
            : changed === false || Object.keys(rr).length === 0
              ? 'not_needed'
              : rollbackOutcome(job);
      const state = [str(rr.install_state), str(rr.emergency_command) ? `Run: ${str(rr.emergency_command)}` : null].filter(Boolean).join(' ');
      events.push({
        kind: 'restore_failed',
        backup: facts,
        who,
        at,
        failure: { step: str(rr.failed_step) ?? failure.step, error: str(asObj(rr.error).message) ?? failure.error },
        rollback,
        rollback_error: state || null,
        safety_backup: safetyFile,
        ...of,
      });
    }
  } else if (job.type === 'backup.drill') {
    // a drill kept out of a maintenance window proved nothing either way: no mail
    if (job.status === 'failed' && job.error?.code !== 'busy') {
      const d = asObj(job.error?.details);
      const facts = backupFacts(ledger, { id: d.backup_id ?? params.backup_id }, {});
      events.push({ kind: 'drill_failed', backup: facts ?? { file: str(d.filename) ?? '—' }, at, who, failure: { step: str(d.failed_step) ?? failure.step, error: str(d.error) ?? failure.error } });
    }
  } else if (job.type === 'update.apply') {
    const u = updateRow(ledger, job.id) ?? {};
    const backupId = num(u.backup_id) ?? num(result.backup_id);
    const backupFile = backupId !== null ? getBackup(ledger, backupId)?.filename ?? null : str(result.backup_file);
    const from_version = str(u.from_version) ?? str(result.from_version);
    const to_version = str(u.to_version) ?? str(result.to_version);
    if (job.status === 'succeeded') {
      // "already up to date": nothing happened, nothing to tell
      if (result.updated === false) return events;
      events.push({
        kind: 'update_completed',
        who,
        at,
        from_version,
        to_version,
        from_commit: str(u.from_commit) ?? str(result.from_commit),
        to_commit: str(u.to_commit) ?? str(result.to_commit),
        backup_file: backupFile,
      });
    } else {
      const rolled = job.status === 'rolled_back' || u.status === 'rolled_back';
      const det = asObj(job.error?.details);
      // failed with the install changed: the way back failed too; otherwise refused or undone before anything changed
      const rollback = rolled ? 'rolled_back' : job.error?.changed === true || det.install_state !== undefined ? 'rollback_failed' : 'not_needed';
      const f = rolled
        ? { step: str(u.failed_step) ?? str(result.failed_step) ?? failure.step, error: str(u.error) ?? str(asObj(result.error).message) ?? failure.error }
        : { step: failure.step ?? str(u.failed_step), error: failure.error };
      const state = [str(det.install_state), str(det.emergency_command) ? `Run: ${str(det.emergency_command)}` : null].filter(Boolean).join(' ');
      events.push({
        kind: 'update_failed',
        who,
        at,
        from_version,
        to_version,
        failure: f,
        rollback,
        rollback_error: rollback === 'rollback_failed' ? state || null : null,
        backup_file: backupFile,
      });
    }
  }
  return events;
}

/** Sends the mails a finished job calls for (functions/notify/listener.ts hands it to the platform); never throws. */
export async function notifyJob(d: NotifyDeps, job: JobView): Promise<NotifyOutcome[]> {
  let events: NotifyEvent[];
  try {
    events = eventsForJob(d.ledger, job, d.config.paths.storage);
  } catch (e) {
    console.error(`[keeper] cannot build the mail for job ${job.id}: ${errorMessage(e)}`);
    return [];
  }
  const out: NotifyOutcome[] = [];
  for (const e of events) out.push(await notify(d, e, { actor: job.actor, target: job.id }));
  return out;
}
