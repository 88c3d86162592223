// createBackup: the whole backup (docs/archive-format.md), callable by the backup.create task and by any
// other task that needs one first (restore: pre_restore, update: pre_update). Steps, each reported:
// precheck → drain → stop_units → dump → start_units → archive → finalize → retention.
import { existsSync } from 'node:fs';
import { chmod, mkdir, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { readEnv, type PhpborgEnv } from '../../runtime/install.ts';
import { drain, withUnitsStopped, type MaintenanceWindow } from '../../runtime/maintenance.ts';
import { databaseSizeEstimate, dumpDatabase, readSettingsTable, serverVersion, tableRowCounts, type DumpResult, type PhpborgSettingRow } from '../../runtime/mariadb.ts';
import { collectVersions, type Versions } from '../../runtime/versions.ts';
import { TaskError, type ProgressParams, type TaskContext } from '../../runtime/task.ts';
import { getBackupByFilename, insertBackup, markFailed, sizeHuman } from '../../state/catalog.ts';
import { addTemp, dropTemp } from '../../state/operations.ts';
import { joinOperation } from '../../runtime/operation/index.ts';
import { ensureSeeded, getSettings } from '../../state/settings.ts';
import { archiveBaseName, archiveFileName, ENTRY, FORMAT_VERSION, GENERATOR, type ArchiveMetadata, type BackupType } from '../../archive/format.ts';
import { ALGO } from '../../archive/crypto.ts';
import { partialName, plannedSize, writeArchive, type Source } from '../../archive/write.ts';
import { finalizeArchive } from './finalize.ts';
import { installSources } from './sources.ts';
import { applyRetention } from './remove.ts';
import { errorMessage } from '../../runtime/error-message.ts';

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
  warnings: string[];
}

/**
 * What createBackup returns to a calling task: the result, plus the passphrase the archive was
 * encrypted with (so a restore can roll back to its safety backup). `passphrase` is NON-enumerable:
 * JSON.stringify and spreads drop it, so it can never reach a job result; backup.create strips it too.
 */
export type BackupOutcome = BackupResult & { readonly passphrase: string | null };

/** A free name: the archive's date moves on by a second when two backups start in the same one. */
function freeName(ctx: TaskContext, dir: string, date: Date, type: BackupType): Date {
  let d = new Date(Math.floor(date.getTime() / 1000) * 1000);
  for (let i = 0; i < 120; i++) {
    const name = archiveFileName(d, type);
    if (!getBackupByFilename(ctx.ledger, name) && !existsSync(join(dir, name))) return d;
    d = new Date(d.getTime() + 1000);
  }
  throw new TaskError('name_taken', `no free archive name in ${dir} near ${date.toISOString()}`);
}

export async function createBackup(ctx: TaskContext, opts: CreateBackupOptions): Promise<BackupOutcome> {
  const t0 = performance.now();
  const prefix = opts.stepPrefix ?? 'backup';
  const [lo, hi] = opts.percentRange ?? [0, 100];
  const step = (key: string, pct: number, message: string, params?: ProgressParams) =>
    ctx.progress(`${prefix}.${key}`, lo + ((hi - lo) * pct) / 100, message, params);
  const warnings: string[] = [];
  const warn = (m: string) => (warnings.push(m), ctx.log('warn', m));

  // 1. pre-checks: nothing is changed before they pass (except the 0700 storage dir)
  step('precheck', 0, 'Checking the installation and the storage directory');
  let env: PhpborgEnv;
  try {
    env = readEnv(ctx.config);
  } catch (e) {
    throw new TaskError('env_unreadable', errorMessage(e), `${prefix}.precheck`);
  }
  let settingsRows: PhpborgSettingRow[];
  try {
    settingsRows = await readSettingsTable(env);
  } catch (e) {
    throw new TaskError('database_unreachable', `cannot read phpBorg's database: ${errorMessage(e)}`, `${prefix}.precheck`);
  }
  await ensureSeeded(ctx.ledger, async () => settingsRows);
  const settings = getSettings(ctx.ledger, ctx.config.paths.storage);
  const passphrase = settings.backup_encryption_enabled ? settings.backup_encryption_passphrase : null;
  if (settings.backup_encryption_enabled && !passphrase) {
    throw new TaskError(
      'passphrase_missing',
      'encryption is enabled but no passphrase is set: run `keeper settings set-passphrase` or disable backup_encryption_enabled',
      `${prefix}.precheck`,
    );
  }
  const dir = settings.backup_storage_path;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
  } catch (e) {
    throw new TaskError('storage_unusable', `cannot use the storage directory ${dir}: ${errorMessage(e)}`, `${prefix}.precheck`);
  }
  const src = await installSources(ctx.config, settingsRows, env);
  src.warnings.forEach(warn);
  const [plan, dbEstimate, versions] = await Promise.all([
    plannedSize([...src.head, ...src.code]),
    databaseSizeEstimate(env).catch(() => 0),
    collectVersions(ctx.config.paths.code, () => serverVersion(env)),
  ]);
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

  const date = freeName(ctx, dir, ctx.now(), opts.type);
  const fileName = archiveFileName(date, opts.type);
  const root = archiveBaseName(date);
  const file = join(dir, fileName);
  const dumpFile = join(dir, partialName(`${root}-${opts.type}.database.sql`));
  const createdAt = date.toISOString();
  const id = insertBackup(ctx.ledger, {
    filename: fileName,
    filepath: file,
    backup_type: opts.type,
    notes: opts.notes ?? null,
    encrypted: !!passphrase,
    created_at: createdAt,
    created_by: ctx.actor.id,
    created_by_name: ctx.actor.name,
    job_id: ctx.jobId,
  });
  // the dump and the partial archive are journaled before they exist: recovery removes them
  const journal = joinOperation(ctx, 'backup');
  const journalId = journal.id;
  // the archive's final name too: until the catalog row says succeeded, a file there is not a backup
  const temps = [dumpFile, join(dir, partialName(fileName)), file];
  addTemp(ctx.ledger, journalId, temps.map((path) => ({ path })));

  let window: MaintenanceWindow | null = null;
  try {
    // 2b. the maintenance window: stop, dump (+ exact row counts, consistent: nothing writes), start
    let dump: DumpResult;
    let counts: Record<string, number>;
    ({
      value: [dump, counts],
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
        const r = await Promise.all([dumpDatabase(env, dumpFile, { signal: ctx.signal }), tableRowCounts(env)]).catch((e: Error) => {
          throw new TaskError('dump_failed', `the database dump failed: ${e.message}`, `${prefix}.dump`);
        });
        step('dump', 28, `Database dumped: ${sizeHuman(r[0].size_bytes)}`, { bytes: r[0].size_bytes, ms: r[0].duration_ms });
        if (!r[0].routines) warn('mysql.proc is unreadable: the dump was taken without routines and events');
        return r;
      },
    ));
    const win = window as unknown as MaintenanceWindow;
    step('start_units', 30, `Units running again; maintenance window ${win.ms} ms`, { window_ms: win.ms });

    // 3. the archive, one streaming pass
    const metadata: ArchiveMetadata = buildMetadata({
      date,
      versions,
      encrypted: !!passphrase,
      total: plan.total_size_bytes + dump.size_bytes,
      files: plan.files_count + 1,
      dump,
      counts,
      ctx,
      opts,
      windowMs: win.ms,
    });
    const sources: Source[] = [
      { kind: 'buffer', path: ENTRY.metadata, data: Buffer.from(JSON.stringify(metadata, null, 2) + '\n'), mode: 0o600 },
      ...src.head,
      { kind: 'file', path: ENTRY.database, from: dumpFile },
      ...src.code,
    ];
    step('archive', 31, `Writing ${fileName}`, { file: fileName, encrypted: !!passphrase });
    let lastPct = -1;
    let lastAt = 0;
    const written = await writeArchive({
      dir,
      fileName,
      root,
      sources,
      passphrase,
      plannedBytes: metadata.total_size_bytes,
      signal: ctx.signal,
      onWarning: warn,
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
    await rm(dumpFile, { force: true });

    // 4. sidecars, 0600, catalog row succeeded — only now does the backup exist
    step('finalize', 94, 'Writing checksums and the catalog entry');
    await finalizeArchive(written, metadata, date, { ledger: ctx.ledger, id });
    dropTemp(ctx.ledger, journalId, temps.splice(0));
    journal.close();

    // 5. retention: never fails the backup
    let deleted: { id: number; filename: string }[] = [];
    if (opts.retention !== false) {
      step('retention', 97, `Applying retention: keep ${settings.backup_retention_count} per type`, { keep: settings.backup_retention_count });
      const r = await applyRetention(ctx.ledger, settings.backup_retention_count, ctx.actor, { exceptJob: ctx.jobId });
      deleted = r.deleted;
      r.errors.forEach((e) => warn(`retention: ${e}`));
      if (deleted.length) step('retention', 99, `Deleted ${deleted.length} old backup(s)`, { deleted: deleted.length });
    }
    step('done', 100, `Backup ${fileName} created (${sizeHuman(written.size_bytes)})`, { id, size_bytes: written.size_bytes });
    const result: BackupResult = {
      id,
      file: written.file,
      filename: fileName,
      sha256: written.sha256,
      mac: written.mac,
      size_bytes: written.size_bytes,
      size_human: sizeHuman(written.size_bytes),
      encrypted: !!passphrase,
      maintenance_window_ms: win.ms,
      duration_ms: Math.round(performance.now() - t0),
      backup_type: opts.type,
      created_at: createdAt,
      created_by: ctx.actor.name,
      notes: opts.notes ?? null,
      phpborg_version: versions.phpborg_version,
      git_commit: versions.git_commit,
      database_size_bytes: dump.size_bytes,
      files_count: written.files_count,
      total_size_bytes: metadata.total_size_bytes,
      storage_dir: dir,
      maintenance_window: { started_at: win.started_at, ended_at: win.ended_at, units: win.units },
      retention: { keep: settings.backup_retention_count, deleted },
      warnings,
    };
    return Object.defineProperty(result, 'passphrase', { value: passphrase, enumerable: false }) as BackupOutcome;
  } catch (e) {
    const w = window as MaintenanceWindow | null;
    markFailed(ctx.ledger, id, { maintenance_window_ms: w?.ms });
    for (const t of temps) await rm(t, { force: true }).catch(() => {});
    dropTemp(ctx.ledger, journalId, temps);
    // units not started: the entry stays open, so recovery starts them once this process is gone
    if (!(e instanceof TaskError && e.code === 'units_not_started')) journal.close();
    throw e;
  }
}

function buildMetadata(a: {
  date: Date;
  versions: Versions;
  encrypted: boolean;
  total: number;
  files: number;
  dump: DumpResult;
  counts: Record<string, number>;
  ctx: TaskContext;
  opts: CreateBackupOptions;
  windowMs: number;
}): ArchiveMetadata {
  return {
    generator: GENERATOR,
    format_version: FORMAT_VERSION,
    backup_date: a.date.toISOString(),
    ...a.versions,
    encrypted: a.encrypted,
    encryption_algo: a.encrypted ? ALGO : null,
    compression: 'gzip',
    total_size_bytes: a.total,
    files_count: a.files,
    database_size_bytes: a.dump.size_bytes,
    database_sha256: a.dump.sha256,
    table_row_counts: a.counts,
    created_by_user_id: a.ctx.actor.id,
    created_by: a.ctx.actor.name,
    backup_type: a.opts.type,
    notes: a.opts.notes ?? null,
    maintenance_window_ms: a.windowMs,
  };
}
