// The restore core, reused by the restore task, the update's automatic rollback and the emergency
// restore: verify → free space → extract to staging → safety backup → stop units → database → code →
// configuration → start units → health. Nothing live changes before the safety backup exists; any
// failure after it rolls back to the safety backup the same way and says so truthfully.
import { mkdir, rename, rm, copyFile, chmod, chown, stat, lstat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KeeperConfig } from '../../runtime/config.ts';
import { allUnits, envPath, maintenanceUnits, parseEnv, readEnv, type PhpborgEnv } from '../../runtime/install.ts';
import { hasCommand } from '../../runtime/exec.ts';
import { serviceManager } from '../../runtime/service-manager.ts';
import { waitHealthy, type InstallHealth } from '../../runtime/probes.ts';
import { drain } from '../../runtime/maintenance.ts';
import { importDatabase } from '../../runtime/mariadb-import.ts';
import { TaskError, type ProgressParams, type TaskContext } from '../../runtime/task.ts';
import { getBackup } from '../../state/catalog.ts';
import { getSettings } from '../../state/settings.ts';
import { closeJournal, journalTempFiles, journalUnitsStarted, journalUnitsStopping, openJournal } from '../../state/journal.ts';
import { ENTRY, extractArchive, isArchiveError, verifyArchive, type BackupType, type Expected, type VerifyCheck } from '../../archive/index.ts';
import {
  chownTree,
  exists,
  finishSwap,
  replaceTree,
  resolveOwner,
  swapIn,
  syncPrefixed,
  tightenSsh,
  undoSwap,
  visudoCheck,
  type Ownership,
  type Swap,
} from './files.ts';
import { freeSpace } from './preview.ts';

export const STEPS = [
  'restore.verify',
  'restore.free_space',
  'restore.extract',
  'restore.safety_backup',
  'restore.stop_units',
  'restore.database',
  'restore.code',
  'restore.config',
  'restore.start_units',
  'restore.health',
  'restore.cleanup',
  'restore.rollback',
] as const;
export type RestoreStep = (typeof STEPS)[number];

/** An archive a restore can fall back to. */
export interface SafetyRef {
  id: number | null;
  filename: string;
  file: string;
  /** null when the archive is not encrypted */
  passphrase: string | null;
  expected?: Expected;
}

/**
 * How the safety backup is obtained: `create` takes one (type `safetyType`) with the backup engineer's
 * createBackup; `skip` takes none (forced restore, or an update rollback whose pre-update backup is the
 * thing being restored); a function lets the emergency restore make its own.
 */
export type SafetyMode = 'create' | 'skip' | ((ctx: TaskContext) => Promise<SafetyRef>);

export interface RestoreInstallOptions {
  /** absolute path of the archive */
  file: string;
  passphrase?: string | null;
  /** size / sha256 / mac / key_check from the catalog or sidecar, checked before anything */
  expected?: Expected;
  /** catalog id of the archive (for messages and the emergency command) */
  backupId?: number | null;
  safetyBackup: SafetyMode;
  /** default pre_restore */
  safetyType?: BackupType;
  /** go on when phpBorg jobs are still running after the drain timeout (never kills them) */
  force?: boolean;
  /** credentials the database is imported with; default the live .env, else the backup's */
  env?: PhpborgEnv;
  /** where the safety backup goes, for the free-space check; default config.paths.storage */
  storageDir?: string;
  /** the part of the job's 0–100 this restore reports in (an update embeds it) */
  percent?: [number, number];
  /**
   * Runs in the database step just before the import, with the credentials the import will use: the
   * emergency and bare-metal restores start MariaDB and recreate the database and its user here.
   */
  prepareDatabase?: (env: PhpborgEnv) => Promise<void>;
  /** bare metal: nothing runs yet and the units may not exist before the configuration step: no drain, no stop */
  nothingRunning?: boolean;
}

export interface StepRecord {
  step: RestoreStep;
  ok: boolean;
  ms: number;
  message?: string;
  error?: string;
}

export interface RestoreResult {
  /** restored: the archive is live; rolled_back: it failed and the install is back as it was; failed: neither */
  outcome: 'restored' | 'rolled_back' | 'failed';
  /** one English sentence saying what happened */
  message: string;
  backup: { id: number | null; filename: string };
  safety_backup: { id: number | null; filename: string } | null;
  steps: StepRecord[];
  failed_step?: RestoreStep;
  error?: string;
  verify: VerifyCheck[];
  health: InstallHealth | null;
  rollback?: { ok: boolean; error?: string; health: InstallHealth | null };
  /** when outcome is failed: what the install looks like now, and how to get out */
  install_state?: string;
  emergency_command?: string;
}

// Absolute, so the command works from any directory. This module sits two levels under the project
// root both as source (functions/restore/) and bundled into the helper (var/build/).
const EMERGENCY_SCRIPT = fileURLToPath(new URL('../../scripts/emergency-restore', import.meta.url));

/** A word a POSIX shell reads back unchanged (quoted only when needed). */
const shellWord = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** The exact command (root: it refuses otherwise) that restores `target` from a terminal when everything else failed. */
export function emergencyCommand(ctx: Pick<TaskContext, 'configPath'>, target: { id: number | null; file: string }): string {
  return ['sudo', EMERGENCY_SCRIPT, String(target.id ?? target.file), '--config', ctx.configPath].map(shellWord).join(' ');
}

const healthError = (h: InstallHealth) =>
  'health check failed: ' + h.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.error ?? 'failed'}`).join('; ');

/** Reads the archive's .env from a staging dir; null when absent or incomplete. */
async function stagedEnv(staging: string): Promise<PhpborgEnv | null> {
  try {
    const { readFile } = await import('node:fs/promises');
    return parseEnv(await readFile(join(staging, ENTRY.env), 'utf8')).env;
  } catch {
    return null;
  }
}

/** Progress in a sub-range, step by step, with a record of each. */
function reporter(ctx: TaskContext, range: [number, number]) {
  const steps: StepRecord[] = [];
  const at = (p: number) => Math.round(range[0] + ((range[1] - range[0]) * p) / 100);
  return {
    steps,
    at,
    say(step: RestoreStep, p: number, message: string, params?: ProgressParams) {
      ctx.progress(step, at(p), message, params);
    },
    async run<T>(step: RestoreStep, p: number, message: string, fn: () => Promise<T>, params?: ProgressParams): Promise<T> {
      ctx.progress(step, at(p), message, params);
      const t0 = performance.now();
      try {
        const v = await fn();
        steps.push({ step, ok: true, ms: Math.round(performance.now() - t0) });
        return v;
      } catch (e) {
        steps.push({ step, ok: false, ms: Math.round(performance.now() - t0), error: (e as Error).message });
        throw Object.assign(e as Error, { restoreStep: (e as { restoreStep?: RestoreStep }).restoreStep ?? step });
      }
    },
  };
}

/** What changed so far: what a rollback must undo. */
interface Applied {
  databaseTouched: boolean;
  codeSwap: Swap | null;
  configTouched: boolean;
  /** etc and ssh dirs, swapped whole */
  configSwaps: Swap[];
}

/**
 * .env (temp file + rename, owner from config.owner or the file it replaces), phpborg-* sudoers
 * (visudo-checked when visudo exists) and phpborg-* systemd units, then daemon-reload: the config
 * files that are overwritten in place.
 */
export async function applyConfigFiles(config: KeeperConfig, staging: string, owner: Ownership | null, log: (m: string) => void = () => {}): Promise<void> {
  const envSrc = join(staging, ENTRY.env);
  if (await exists(envSrc)) {
    const dest = envPath(config);
    const tmp = `${dest}.keeper-tmp`;
    await copyFile(envSrc, tmp);
    await chmod(tmp, (await stat(envSrc)).mode & 0o7777);
    if (owner) await chown(tmp, owner.uid, owner.gid);
    else if (await exists(dest)) {
      const st = await stat(dest);
      await chown(tmp, st.uid, st.gid);
    }
    await rename(tmp, dest);
  } else log('the archive holds no .env: the current one is kept');
  const visudo = (await hasCommand('visudo')) ? 'visudo' : null;
  await syncPrefixed(join(staging, ENTRY.sudoers), config.paths.sudoers, config.file_prefix, { check: (f) => visudoCheck(f, visudo) });
  await syncPrefixed(join(staging, ENTRY.systemd), config.paths.systemd, config.file_prefix);
  await serviceManager(config).daemonReload();
}

/**
 * /etc/phpborg and the SSH dir, swapped whole (moved aside, restorable exactly); SSH gets 0700 dirs,
 * 0600 files and config.owner. Swaps are pushed to `swaps` as they happen so a failure half-way can
 * be undone.
 */
export async function applyConfigDirs(config: KeeperConfig, staging: string, tag: string, owner: Ownership | null, swaps: Swap[]): Promise<void> {
  const etcSrc = join(staging, ENTRY.etc);
  swaps.push(await replaceTree((await exists(etcSrc)) ? etcSrc : null, config.paths.etc, tag));
  const sshSrc = join(staging, ENTRY.ssh);
  swaps.push(await replaceTree((await exists(sshSrc)) ? sshSrc : null, config.paths.ssh, tag));
  if (await exists(config.paths.ssh)) {
    await tightenSsh(config.paths.ssh);
    if (owner) await chownTree(config.paths.ssh, owner);
  }
}

/** The whole configuration step: files in place, then the dirs. */
export async function applyConfig(
  config: KeeperConfig,
  staging: string,
  tag: string,
  owner: Ownership | null,
  swaps: Swap[],
  log: (m: string) => void = () => {},
): Promise<void> {
  await applyConfigFiles(config, staging, owner, log);
  await applyConfigDirs(config, staging, tag, owner, swaps);
}

/** A staging dir beside the code dir (same filesystem, so the code swap is a rename). */
export function stagingDir(config: KeeperConfig, tag: string): string {
  return join(dirname(config.paths.code), `.keeper-staging-${tag}`);
}

/** Extracts an archive into a fresh 0700 staging dir; removed again if extraction fails. */
export async function extractToStaging(
  config: KeeperConfig,
  file: string,
  tag: string,
  opts: {
    passphrase: string | null;
    expected?: Expected;
    /** the caller has just checked this file's hash and HMAC: skip that pass (entries are still checked) */
    integrityChecked?: boolean;
    signal?: AbortSignal;
    onProgress?: (done: number, total: number) => void;
  },
): Promise<string> {
  const dir = stagingDir(config, tag);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    await extractArchive(file, dir, {
      passphrase: opts.passphrase,
      expected: opts.expected,
      integrityChecked: opts.integrityChecked,
      signal: opts.signal,
      onProgress: opts.onProgress,
    });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return dir;
}

/** Swaps the staged code tree in, owned by config.owner when set. */
export async function swapCode(config: KeeperConfig, staging: string, tag: string, owner: Ownership | null): Promise<Swap> {
  const src = join(staging, ENTRY.code);
  if (!(await lstat(src).then((s) => s.isDirectory(), () => false))) throw new Error('the archive holds no code/ tree');
  if (owner) await chownTree(src, owner);
  return swapIn(src, config.paths.code, tag);
}

/** The safety backup through the backup engineer's core (loaded lazily: restore must not need it to load). */
async function createSafety(ctx: TaskContext, type: BackupType, sourceName: string, force: boolean, range: [number, number]): Promise<SafetyRef> {
  const { createBackup } = await import('../backup/core.ts');
  // no retention here: it could delete the very archive being restored
  const r = await createBackup(ctx, {
    type,
    notes: `automatic backup before restoring ${sourceName}`,
    force,
    stepPrefix: 'restore.safety_backup',
    percentRange: range,
    retention: false,
  });
  const row = getBackup(ctx.ledger, r.id);
  return {
    id: r.id,
    filename: r.filename,
    file: r.file,
    passphrase: r.encrypted ? getSettings(ctx.ledger, ctx.config.paths.storage).backup_encryption_passphrase : null,
    expected: { sha256: r.sha256, size_bytes: r.size_bytes, mac: row?.mac ?? null },
  };
}

/**
 * Restores the whole install from an archive. Throws TaskError (nothing changed) when it stops before
 * the safety backup exists or the units are stopped; otherwise returns the outcome: restored,
 * rolled_back (failure, install back to the safety backup), or failed (with the install's state and
 * the emergency command). Never restores the ledger.
 */
export async function restoreInstall(ctx: TaskContext, o: RestoreInstallOptions): Promise<RestoreResult> {
  const { config } = ctx;
  const rep = reporter(ctx, o.percent ?? [0, 100]);
  const filename = o.file.split('/').pop()!;
  const tag = `${ctx.jobId.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 24) || 'job'}-${Date.now().toString(36)}`;
  const passphrase = o.passphrase ?? null;
  const result: RestoreResult = {
    outcome: 'failed',
    message: '',
    backup: { id: o.backupId ?? null, filename },
    safety_backup: null,
    steps: rep.steps,
    verify: [],
    health: null,
  };

  // 1. verify — before anything changes
  const verified = await rep.run('restore.verify', 0, `Verifying ${filename}`, async () => {
    const v = await verifyArchive(o.file, { passphrase, expected: o.expected, signal: ctx.signal });
    result.verify = v.checks;
    if (!v.ok || !v.metadata) {
      const bad = v.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.error ?? 'failed'}`);
      throw new TaskError(v.code ?? 'verify_failed', `${filename} failed verification, nothing was changed: ${bad.join('; ') || 'no metadata'}`, 'restore.verify', {
        checks: v.checks,
      });
    }
    return v;
  }).catch((e) => {
    if (e instanceof TaskError) throw e;
    const code = isArchiveError(e) ? e.code : 'verify_failed';
    throw new TaskError(code, `${filename} cannot be restored, nothing was changed: ${(e as Error).message}`, 'restore.verify');
  });
  const metadata = verified.metadata!;
  const safetyWanted = o.safetyBackup !== 'skip';

  // 2. free space
  await rep.run('restore.free_space', 8, 'Checking free space', async () => {
    const size = (await stat(o.file)).size;
    const fs = await freeSpace(config, metadata, size, { storageDir: o.storageDir ?? config.paths.storage, safety: safetyWanted, ledger: ctx.ledger });
    const short = fs.paths.filter((p) => p.available < p.needed);
    if (short.length) {
      const what = short.map((p) => `${p.path} needs ${mib(p.needed)} but has ${mib(p.available)} free`).join('; ');
      throw new TaskError('insufficient_space', `not enough free space, nothing was changed: ${what}. Free ${mib(Math.max(...short.map((p) => p.needed - p.available)))} and try again.`, 'restore.free_space', fs);
    }
  });

  // 3. extract to staging beside the code dir: checked against the manifest, still nothing live changed
  const staging = await rep.run('restore.extract', 10, 'Extracting the archive to a staging dir', () =>
    extractToStaging(config, o.file, tag, {
      passphrase,
      expected: o.expected,
      integrityChecked: true, // step 1 verified this very file
      signal: ctx.signal,
      onProgress: (d, t) => rep.say('restore.extract', 10 + Math.round((15 * d) / Math.max(t, 1)), 'Extracting', { done: d, total: t }),
    }),
  ).catch((e) => {
    if (e instanceof TaskError) throw e;
    throw new TaskError(isArchiveError(e) ? e.code : 'extract_failed', `extraction failed, nothing was changed: ${(e as Error).message}`, 'restore.extract');
  });
  const journalId = openJournal(ctx.ledger, { jobId: ctx.jobId, tempFiles: [staging] });
  const cleanStaging = async () => {
    await rm(staging, { recursive: true, force: true });
  };

  // 4. safety backup
  let safety: SafetyRef | null = null;
  try {
    if (o.safetyBackup === 'create') {
      safety = await rep.run('restore.safety_backup', 26, 'Taking a safety backup of the current install', () =>
        createSafety(ctx, o.safetyType ?? 'pre_restore', filename, !!o.force, [rep.at(26), rep.at(45)]),
      );
    } else if (typeof o.safetyBackup === 'function') {
      const make = o.safetyBackup;
      safety = await rep.run('restore.safety_backup', 26, 'Taking a safety backup of the current install', () => make(ctx));
    } else {
      rep.say('restore.safety_backup', 26, 'No safety backup (skipped on request)');
    }
  } catch (e) {
    await cleanStaging();
    closeJournal(ctx.ledger, journalId);
    if (e instanceof TaskError) throw new TaskError(e.code, `the safety backup failed, nothing was changed: ${e.message}`, 'restore.safety_backup', e.details);
    throw new TaskError('safety_backup_failed', `the safety backup failed, nothing was changed: ${(e as Error).message}`, 'restore.safety_backup');
  }
  if (safety) result.safety_backup = { id: safety.id, filename: safety.filename };

  // From here on the install changes. Each failure rolls back.
  const owner = await resolveOwner(config.owner);
  const live = readLiveEnvSync(config);
  const backupEnv = await stagedEnv(staging);
  const dbEnv = o.env ?? live ?? backupEnv;
  const applied: Applied = { databaseTouched: false, codeSwap: null, configTouched: false, configSwaps: [] };
  const sm = serviceManager(config);
  const stopUnits = [...new Set([...maintenanceUnits(config, live ?? backupEnv ?? { WORKER_POOL_SIZE: 4 })])];

  try {
    // 5. drain and stop
    await rep.run('restore.stop_units', 46, `Stopping ${stopUnits.length} unit(s)`, async () => {
      if (o.nothingRunning) return;
      if (dbEnv) {
        await drain(dbEnv, {
          timeoutS: config.drain_timeout_s,
          force: o.force,
          signal: ctx.signal,
          onDbError: 'skip',
          onWait: (running, ms) =>
            rep.say('restore.stop_units', 46, `Waiting for ${running.length} running phpBorg job(s)`, { running: running.length, waited_ms: ms }),
        });
      }
      journalUnitsStopping(ctx.ledger, journalId, stopUnits);
      await sm.stop(stopUnits);
    });

    // 6. database
    await rep.run('restore.database', 50, 'Recreating the database from database.sql', async () => {
      if (!dbEnv) throw new Error('no usable .env (live or in the archive) to reach the database');
      applied.databaseTouched = true;
      if (o.prepareDatabase) await o.prepareDatabase(dbEnv);
      await importDatabase(dbEnv, join(staging, ENTRY.database), { signal: ctx.signal, onLine: (l) => ctx.log('warn', `mariadb: ${l}`) });
    });

    // 7. code
    await rep.run('restore.code', 62, 'Swapping the code tree', async () => {
      applied.codeSwap = await swapCode(config, staging, tag, owner);
    });

    // 8. configuration
    await rep.run('restore.config', 70, 'Restoring .env, sudoers, systemd units, /etc/phpborg and SSH keys', async () => {
      applied.configTouched = true;
      await applyConfig(config, staging, tag, owner, applied.configSwaps, (m) => ctx.log('warn', m));
    });

    // 9. start, with the units the restored .env asks for
    const env = await rep.run('restore.start_units', 76, 'Starting the units', async () => {
      const restored = readEnv(config);
      await sm.start(allUnits(config, restored));
      journalUnitsStarted(ctx.ledger, journalId);
      return restored;
    });

    // 10. health
    const health = await rep.run('restore.health', 80, 'Checking health: units, database, Redis, HTTP', async () => {
      const h = await waitHealthy(config, env, ctx.signal);
      result.health = h;
      if (!h.ok) throw new Error(healthError(h));
      return h;
    });
    result.health = health;
  } catch (e) {
    const failedStep = ((e as { restoreStep?: RestoreStep }).restoreStep ?? 'restore.health') as RestoreStep;
    const error = (e as Error).message;
    result.failed_step = failedStep;
    result.error = error;
    if (!applied.databaseTouched && !applied.codeSwap && !applied.configTouched) {
      // stopped before anything was replaced (e.g. jobs still running): start again, report plainly
      await sm.start(stopUnits).catch(() => {});
      journalUnitsStarted(ctx.ledger, journalId);
      await cleanStaging();
      closeJournal(ctx.ledger, journalId);
      const kept = safety ? ` (the safety backup ${safety.filename} is kept)` : '';
      const code = e instanceof TaskError ? e.code : 'restore_failed';
      throw new TaskError(code, `restore failed at ${failedStep}: ${error}; nothing was changed${kept}`, failedStep, e instanceof TaskError ? e.details : undefined);
    }
    await rollBack(ctx, rep, result, { staging, tag, owner, applied, safety, journalId, dbEnv, stopUnits, target: { id: o.backupId ?? null, file: o.file }, prepareDatabase: o.prepareDatabase });
    return result;
  }

  // 11. cleanup: only now is the previous tree deleted
  await rep.run('restore.cleanup', 97, 'Removing the previous tree and the staging dir', async () => {
    if (applied.codeSwap) await finishSwap(applied.codeSwap);
    for (const s of applied.configSwaps) await finishSwap(s);
    await cleanStaging();
    closeJournal(ctx.ledger, journalId);
  }).catch((e) => ctx.log('warn', `cleanup after the restore: ${(e as Error).message}`));
  result.outcome = 'restored';
  result.message = `restored ${filename}` + (safety ? `; safety backup ${safety.filename}` : '');
  rep.say('restore.cleanup', 100, result.message);
  return result;
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

function readLiveEnvSync(config: KeeperConfig): PhpborgEnv | null {
  try {
    return readEnv(config);
  } catch {
    return null;
  }
}

interface RollbackInput {
  staging: string;
  tag: string;
  owner: Ownership | null;
  applied: Applied;
  safety: SafetyRef | null;
  journalId: number;
  dbEnv: PhpborgEnv | null;
  stopUnits: string[];
  /** the archive being restored (for the emergency command when there is no safety backup) */
  target: { id: number | null; file: string };
  prepareDatabase?: (env: PhpborgEnv) => Promise<void>;
}

/**
 * Undoes a failed restore: what was moved aside (code, /etc/phpborg, SSH) goes back as it was; what was
 * overwritten in place (database, .env, sudoers, units) comes from the safety backup; then units start
 * and health is checked. Fills result.outcome/message truthfully.
 */
async function rollBack(ctx: TaskContext, rep: ReturnType<typeof reporter>, result: RestoreResult, r: RollbackInput): Promise<void> {
  const { config } = ctx;
  const reason = `restore failed at ${result.failed_step}: ${result.error}`;
  const sm = serviceManager(config);
  const needsArchive = r.applied.databaseTouched || r.applied.configTouched;
  const t0 = performance.now();
  let rbStaging: string | null = null;
  const record = (ok: boolean, error?: string) =>
    rep.steps.push({ step: 'restore.rollback', ok, ms: Math.round(performance.now() - t0), ...(error ? { error } : {}) });

  if (!r.safety && needsArchive) {
    // nothing to roll back to: say exactly where things stand
    await sm.start(allUnits(config, readLiveEnvSync(config) ?? { WORKER_POOL_SIZE: 4 })).catch(() => {});
    result.outcome = 'failed';
    result.install_state = describeState(r.applied, r.staging);
    result.emergency_command = emergencyCommand(ctx, r.target);
    result.message = `${reason}; no safety backup was taken, so nothing was rolled back. ${result.install_state} Run: ${result.emergency_command}`;
    record(false, 'no safety backup');
    return;
  }
  rep.say('restore.rollback', 85, r.safety ? `Rolling back to ${r.safety.filename}` : 'Undoing the restore', { reason });
  try {
    const env0 = readLiveEnvSync(config);
    await sm.stop([...new Set([...r.stopUnits, ...maintenanceUnits(config, env0 ?? { WORKER_POOL_SIZE: 4 })])]).catch(() => {});
    if (needsArchive && r.safety) {
      // the restore's staging is no longer needed: free its space before extracting the safety archive
      await rm(r.staging, { recursive: true, force: true });
      rbStaging = await extractToStaging(config, r.safety.file, `${r.tag}-rb`, { passphrase: r.safety.passphrase, expected: r.safety.expected });
      journalTempFiles(ctx.ledger, r.journalId, [rbStaging]);
    }
    if (r.applied.databaseTouched && rbStaging) {
      rep.say('restore.rollback', 88, 'Rollback: database');
      const env = r.dbEnv ?? (await stagedEnv(rbStaging));
      if (!env) throw new Error('no .env to reach the database');
      if (r.prepareDatabase) await r.prepareDatabase(env);
      await importDatabase(env, join(rbStaging, ENTRY.database));
    }
    if (r.applied.codeSwap) {
      rep.say('restore.rollback', 90, 'Rollback: code tree');
      await undoSwap(r.applied.codeSwap);
      r.applied.codeSwap = null;
    }
    if (r.applied.configTouched && rbStaging) {
      rep.say('restore.rollback', 91, 'Rollback: configuration');
      // dirs moved aside go back exactly; files overwritten in place come from the safety backup
      for (const s of r.applied.configSwaps.reverse()) await undoSwap(s);
      r.applied.configSwaps = [];
      await applyConfigFiles(config, rbStaging, r.owner, (m) => ctx.log('warn', m));
    }
    const env = readEnv(config);
    const units = allUnits(config, env);
    rep.say('restore.rollback', 93, `Rollback: starting ${units.length} unit(s)`);
    await sm.start(units);
    journalUnitsStarted(ctx.ledger, r.journalId);
    const h = await waitHealthy(config, env, ctx.signal);
    result.rollback = { ok: h.ok, health: h, ...(h.ok ? {} : { error: healthError(h) }) };
    if (!h.ok) throw new Error(healthError(h));
    if (rbStaging) await rm(rbStaging, { recursive: true, force: true });
    await rm(r.staging, { recursive: true, force: true });
    closeJournal(ctx.ledger, r.journalId);
    result.outcome = 'rolled_back';
    result.message = r.safety ? `${reason}; rolled back to ${r.safety.filename}` : `${reason}; the install was left as it was`;
    record(true);
    rep.say('restore.rollback', 100, result.message);
  } catch (e) {
    const error = (e as Error).message;
    result.rollback = { ok: false, error, health: result.rollback?.health ?? null };
    result.outcome = 'failed';
    result.install_state = describeState(r.applied, rbStaging ?? r.staging);
    const target = r.safety ? { id: r.safety.id, file: r.safety.file } : r.target;
    result.emergency_command = emergencyCommand(ctx, target);
    result.message = `${reason}; the rollback${r.safety ? ` to ${r.safety.filename}` : ''} failed too: ${error}. ${result.install_state} Run: ${result.emergency_command}`;
    record(false, error);
  }
}

function describeState(a: Applied, staging: string): string {
  const parts: string[] = [];
  parts.push(a.databaseTouched ? 'the database was replaced (possibly partially)' : 'the database is unchanged');
  parts.push(a.codeSwap ? `the code dir holds the restored tree, the previous one is at ${a.codeSwap.aside}` : 'the code dir holds its previous tree');
  parts.push(a.configTouched ? 'configuration files were (partly) replaced' : 'configuration is unchanged');
  const asides = a.configSwaps.filter((s) => s.aside).map((s) => s.aside);
  if (asides.length) parts.push(`previous config dirs are kept at ${asides.join(', ')}`);
  parts.push(`staged files are in ${staging}`);
  return `State: ${parts.join('; ')}.`;
}
