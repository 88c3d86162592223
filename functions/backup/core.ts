// createBackup: the whole backup, callable by the backup.create task and by any other task that needs
// one first (restore: pre_restore, update: pre_update). Steps, each reported:
// precheck → drain → stop_units → dump → start_units → archive → finalize → retention.
// Naming, the catalog row, the archive and its sidecars are writeBackup's (./write.ts), shared with
// the emergency safety copy; this adds the checks, the drain, the maintenance window and retention.
import { statfs } from 'node:fs/promises';
import { readEnv, type PhpborgEnv } from '../../runtime/install.ts';
import { drain, withUnitsStopped, type MaintenanceWindow } from '../../runtime/maintenance.ts';
import { databaseSizeEstimate, dumpDatabase, readSettingsTable, serverVersion, tableStats, type PhpborgSettingRow } from '../../runtime/mariadb.ts';
import { collectVersions } from '../../runtime/versions.ts';
import { TaskError, type ProgressParams, type TaskContext } from '../../runtime/task.ts';
import { sizeHuman } from '../../state/catalog.ts';
import { joinOperation } from '../../runtime/operation/index.ts';
import { stepStarted } from '../../state/operations.ts';
import { ensureSeeded, getSettings } from '../../state/settings.ts';
import { ensureOwnStorageDir, storagePolicy } from '../../runtime/storage-path.ts';
import type { BackupType } from '../../archive/format.ts';
import { plannedSize } from '../../archive/write.ts';
import { splitStats, writeBackup } from './write.ts';
import { installSources } from './sources.ts';
import { applyRetention } from './remove.ts';
import { enabledTargets, offsitePass, type TargetPass } from '../offsite/copy.ts';

export interface CreateBackupOptions {
  type: BackupType;
  notes?: string | null;
  /** go on when phpBorg jobs are still running after the drain timeout (never kills them) */
  force?: boolean;
  /** step key prefix, default "backup" (e.g. "restore.safety_backup") */
  stepPrefix?: string;
  /** the part of the caller's job percent this backup spans, default [0, 100] */
  percentRange?: [number, number];
  /** run the retention policy afterwards (default true) */
  retention?: boolean;
  /**
   * copy to the enabled off-site targets afterwards (default false: a safety backup inside a restore
   * or an update must not wait for the network; the next backup's pass copies it)
   */
  offsite?: boolean;
}

export interface BackupResult {
  id: number;
  /** absolute path of the archive */
  file: string;
  filename: string;
  sha256: string;
  /** HMAC of the encrypted file (null when plain) */
  mac: string | null;
  size_bytes: number;
  size_human: string;
  encrypted: boolean;
  maintenance_window_ms: number;
  duration_ms: number;
  backup_type: BackupType;
  created_at: string;
  created_by: string;
  notes: string | null;
  phpborg_version: string | null;
  git_commit: string | null;
  database_size_bytes: number;
  files_count: number;
  total_size_bytes: number;
  storage_dir: string;
  maintenance_window: { started_at: string; ended_at: string; units: string[] };
  retention: { keep: number; deleted: { id: number; filename: string }[] };
  /** per enabled target: the copies made (this backup first, then retries) and the target's retention */
  offsite: TargetPass[];
  warnings: string[];
}

/**
 * What createBackup returns to a calling task: the result, plus the passphrase the archive was
 * encrypted with (so a restore can roll back to its safety backup). `passphrase` is NON-enumerable:
 * JSON.stringify and spreads drop it, so it can never reach a job result; backup.create strips it too.
 */
export type BackupOutcome = BackupResult & { readonly passphrase: string | null };

/**
 * The whole backup, journaled from its first step: in the surrounding operation's entry when it is a
 * step of one (a safety backup), else in its own. A failure to start the units again leaves the entry
 * open, so recovery starts them once this process is gone.
 */
export async function createBackup(ctx: TaskContext, opts: CreateBackupOptions): Promise<BackupOutcome> {
  const journal = joinOperation(ctx, 'backup');
  try {
    const r = await backupSteps(ctx, opts, journal.id);
    journal.close();
    return r;
  } catch (e) {
    if (!(e instanceof TaskError && e.code === 'units_not_started')) journal.close();
    throw e;
  }
}

async function backupSteps(ctx: TaskContext, opts: CreateBackupOptions, journalId: number): Promise<BackupOutcome> {
  const t0 = performance.now();
  const prefix = opts.stepPrefix ?? 'backup';
  const [lo, hi] = opts.percentRange ?? [0, 100];
  let current = '';
  const step = (key: string, pct: number, message: string, params?: ProgressParams) => {
    // the journal knows the step before it is reported (and acts)
    if (key !== current) stepStarted(ctx.ledger, journalId, `${prefix}.${key}`);
    current = key;
    ctx.progress(`${prefix}.${key}`, lo + ((hi - lo) * pct) / 100, message, params);
  };
  const warnings: string[] = [];
  const warn = (m: string) => (warnings.push(m), ctx.log('warn', m));

  // 1. pre-checks: nothing is changed before they pass (except the 0700 storage dir)
  step('precheck', 0, 'Checking the installation and the storage directory');
  let env: PhpborgEnv;
  try {
    env = readEnv(ctx.config);
  } catch (e) {
    throw new TaskError('env_unreadable', (e as Error).message, `${prefix}.precheck`);
  }
  // reads that need nothing below (and never reject) overlap the settings and storage checks
  const dbEstimateP = databaseSizeEstimate(env).catch(() => 0);
  const versionsP = collectVersions(ctx.config.paths.code, () => serverVersion(env));
  let settingsRows: PhpborgSettingRow[];
  try {
    settingsRows = await readSettingsTable(env);
  } catch (e) {
    throw new TaskError('database_unreachable', `cannot read phpBorg's database: ${(e as Error).message}`, `${prefix}.precheck`);
  }
  await ensureSeeded(ctx.ledger, async () => settingsRows, storagePolicy(ctx.config));
  const settings = getSettings(ctx.ledger, ctx.config.paths.storage);
  const passphrase = settings.backup_encryption_enabled ? settings.backup_encryption_passphrase : null;
  if (settings.backup_encryption_enabled && !passphrase) {
    throw new TaskError(
      'passphrase_missing',
      'encryption is enabled but no passphrase is set: run `keeper settings set-passphrase` or disable backup_encryption_enabled',
      `${prefix}.precheck`,
    );
  }
  let dir: string;
  try {
    dir = await ensureOwnStorageDir(ctx.config, settings.backup_storage_path);
  } catch (e) {
    throw new TaskError('storage_unusable', `cannot use the storage directory ${settings.backup_storage_path}: ${(e as Error).message}`, `${prefix}.precheck`, {
      key: 'backup_storage_path',
    });
  }
  const src = await installSources(ctx.config, settingsRows, env);
  src.warnings.forEach(warn);
  const [plan, dbEstimate, versions] = await Promise.all([plannedSize([...src.head, ...src.code]), dbEstimateP, versionsP]);
  const needed = plan.total_size_bytes + dbEstimate;
  const fs = await statfs(dir);
  const free = Number(fs.bavail) * Number(fs.bsize);
  if (free < needed) {
    throw new TaskError(
      'insufficient_space',
      `not enough free space in ${dir}: ${sizeHuman(free)} free, the installation weighs about ${sizeHuman(needed)}; free some space or move backup_storage_path`,
      `${prefix}.precheck`,
      { free_bytes: free, needed_bytes: needed },
    );
  }
  step('precheck', 2, `Installation: ${plan.files_count} files, ${sizeHuman(needed)}`, {
    files: plan.files_count,
    bytes: needed,
    free_bytes: free,
    encrypted: !!passphrase,
  });

  // 2a. drain: refuse rather than cut a borg job in half
  step('drain', 3, 'Waiting for running phpBorg jobs to finish');
  const drained = await drain(env, {
    timeoutS: ctx.config.drain_timeout_s,
    force: opts.force,
    signal: ctx.signal,
    onWait: (running, waited) =>
      step('drain', 5, `Waiting for ${running.length} running phpBorg job(s)`, { running: running.length, waited_ms: waited }),
  });
  if (drained.forced.length) warn(`forced: phpBorg jobs still running: ${drained.forced.map((j) => `#${j.id}`).join(', ')}`);

  // set from inside writeBackup's database step
  let window = null as MaintenanceWindow | null;
  let lastPct = -1;
  let lastAt = 0;
  const w = await writeBackup({
    type: opts.type,
    dir,
    at: ctx.now(),
    ledger: ctx.ledger,
    actor: ctx.actor,
    jobId: ctx.jobId,
    journal: { ledger: ctx.ledger, id: journalId },
    notes: opts.notes ?? null,
    passphrase,
    versions,
    head: src.head,
    code: src.code,
    plan,
    signal: ctx.signal,
    onWarning: warn,
    failedWindowMs: () => window?.ms,
    // 2b. the maintenance window: stop, dump (+ exact row counts, consistent: nothing writes), start
    database: async (named) => {
      const {
        value: [dump, counts],
        window: win,
      } = await withUnitsStopped(
        {
          config: ctx.config,
          ledger: ctx.ledger,
          env,
          journalId,
          steps: { stop: `${prefix}.stop_units`, start: `${prefix}.start_units` },
          progress: (s, _p, m, params) => step(s.slice(prefix.length + 1), s.endsWith('stop_units') ? 10 : 30, m, params),
          onWindow: (w) => (window = w),
        },
        async () => {
          step('dump', 12, 'Dumping the database', { database: env.DB_NAME });
          const r = await Promise.all([dumpDatabase(env, named.databaseFile, { signal: ctx.signal }), tableStats(env)]).catch((e: Error) => {
            throw new TaskError('dump_failed', `the database dump failed: ${e.message}`, `${prefix}.dump`);
          });
          step('dump', 28, `Database dumped: ${sizeHuman(r[0].size_bytes)}`, { bytes: r[0].size_bytes, ms: r[0].duration_ms });
          if (!r[0].routines) warn('mysql.proc is unreadable: the dump was taken without routines and events');
          return r;
        },
      );
      step('start_units', 30, `Units running again; maintenance window ${win.ms} ms`, { window_ms: win.ms });
      return { size_bytes: dump.size_bytes, sha256: dump.sha256, ...splitStats(counts), maintenance_window_ms: win.ms };
    },
    // 3. the archive, one streaming pass; 4. sidecars and the catalog row
    onStage: (stage, named) =>
      stage === 'archive'
        ? step('archive', 31, `Writing ${named.filename}`, { file: named.filename, encrypted: !!passphrase })
        : step('finalize', 94, 'Writing checksums and the catalog entry'),
    onProgress: (done, total) => {
      const pct = total ? Math.min(1, done / total) : 0;
      const p = Math.floor(31 + pct * 62);
      if (p !== lastPct && Date.now() - lastAt > 250) {
        lastPct = p;
        lastAt = Date.now();
        step('archive', p, `Archiving: ${sizeHuman(done)} of ${sizeHuman(total)}`, { done_bytes: done, total_bytes: total });
      }
    },
  });
  const win = window!;

  // 5. retention: never fails the backup
  let deleted: { id: number; filename: string }[] = [];
  if (opts.retention !== false) {
    step('retention', 97, `Applying retention: keep ${settings.backup_retention_count} per type`, { keep: settings.backup_retention_count });
    const r = await applyRetention(ctx.ledger, settings.backup_retention_count, ctx.actor, { exceptJob: ctx.jobId });
    deleted = r.deleted;
    r.errors.forEach((e) => warn(`retention: ${e}`));
    if (deleted.length) step('retention', 99, `Deleted ${deleted.length} old backup(s)`, { deleted: deleted.length });
  }
  // 6. off-site: a failed copy never fails the backup; it is recorded and retried later
  let offsite: TargetPass[] = [];
  const targets = opts.offsite ? enabledTargets(ctx.config) : [];
  if (targets.length) {
    step('offsite', 98, `Copying off-site to ${targets.map((t) => t.name).join(', ')}`, { targets: targets.length });
    offsite = await offsitePass(
      { config: ctx.config, ledger: ctx.ledger, actor: ctx.actor, log: ctx.log, signal: ctx.signal, now: ctx.now },
      { first: w.id as number, keepDefault: settings.backup_retention_count },
    );
    for (const t of offsite) {
      for (const c of t.copies) if (c.status === 'failed') warn(`off-site copy of ${c.filename} to ${t.target} failed: ${c.error}`);
      t.retention.errors.forEach((e) => warn(`off-site retention on ${t.target}: ${e}`));
    }
    const ok = offsite.filter((t) => t.copies.some((c) => c.backup_id === w.id && c.status === 'verified')).length;
    step('offsite', 99, `Off-site: ${ok} of ${targets.length} target(s) verified`, { verified: ok, targets: targets.length });
  }
  step('done', 100, `Backup ${w.filename} created (${sizeHuman(w.size_bytes)})`, { id: w.id, size_bytes: w.size_bytes });
  const result: BackupResult = {
    id: w.id as number,
    file: w.file,
    filename: w.filename,
    sha256: w.sha256,
    mac: w.mac,
    size_bytes: w.size_bytes,
    size_human: sizeHuman(w.size_bytes),
    encrypted: w.encrypted,
    maintenance_window_ms: win.ms,
    duration_ms: Math.round(performance.now() - t0),
    backup_type: opts.type,
    created_at: w.date.toISOString(),
    created_by: ctx.actor.name,
    notes: w.notes,
    phpborg_version: versions.phpborg_version,
    git_commit: versions.git_commit,
    database_size_bytes: w.database.size_bytes,
    files_count: w.files_count,
    total_size_bytes: w.metadata.total_size_bytes,
    storage_dir: dir,
    maintenance_window: { started_at: win.started_at, ended_at: win.ended_at, units: win.units },
    retention: { keep: settings.backup_retention_count, deleted },
    offsite,
    warnings,
  };
  return Object.defineProperty(result, 'passphrase', { value: passphrase, enumerable: false }) as BackupOutcome;
}
