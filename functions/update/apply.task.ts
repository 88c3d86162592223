// Task update.apply: fast-forward phpBorg to a newer commit of the configured branch, with a
// mandatory pre-update backup, dependencies where the diff touches them, tracked migrations, a
// health check on the new code and, on any failure after the history row exists, an automatic
// rollback that restores the pre-update backup (functions/restore/apply.ts).
//
// Steps (stable keys): update.precheck → update.fetch → update.backup → update.record →
// update.stop_units → update.fast_forward → update.dependencies → update.system_dependencies →
// update.migrations → update.start_units → update.health; on failure update.rollback.
import * as v from 'valibot';
import type { KeeperConfig } from '../../runtime/config.ts';
import { allUnits, maintenanceUnits, readEnv, type PhpborgEnv } from '../../runtime/install.ts';
import * as git from '../../runtime/git.ts';
import { drain } from '../../runtime/maintenance.ts';
import { databaseSizeEstimate } from '../../runtime/mariadb.ts';
import { waitHealthy, type InstallHealth } from '../../runtime/probes.ts';
import { serviceManager } from '../../runtime/service-manager.ts';
import { defineTask, TaskError, type ProgressParams, type TaskContext, type TaskOutcome } from '../../runtime/task.ts';
import { getBackup, setPinned, sizeHuman } from '../../state/catalog.ts';
import { closeJournal, journalUnitsStarted, journalUnitsStopping, openJournal, openJournalEntries } from '../../state/journal.ts';
import { getSettings } from '../../state/settings.ts';
import { finishUpdate, insertUpdate, olderUpdateBackupIds } from '../../state/updates.ts';
import { createBackup } from '../backup/core.ts';
import { restoreInstall, type RestoreResult } from '../restore/apply.ts';
import { locateArchive } from '../restore/locate.ts';
import { missingCommands, missingSystemDependencies, neededCommands, planDependencies, runDependencies } from './dependencies.ts';
import { applyMigration, ensureTracking, migrationsRecordedCheck, pendingMigrations } from './migrations.ts';
import { giveBackToOwner } from './ownership.ts';
import { installSize, freeBytes } from './space.ts';

export const ApplyParams = v.strictObject({
  /** a branch, tag or commit of the configured branch; default <remote>/<branch> */
  target: v.optional(
    v.nullable(
      v.pipe(
        v.string('expected a git ref (string)'),
        v.check(git.isSafeRef, 'expected a branch, tag or commit hash (letters, digits, . _ / -; no "..", no leading "-")'),
      ),
    ),
    null,
  ),
});
export type ApplyParams = v.InferOutput<typeof ApplyParams>;

export interface StepRecord {
  step: string;
  ok: boolean;
  ms: number;
  error?: string;
}

export interface ApplyResult {
  updated: boolean;
  /** one English sentence */
  message: string;
  history_id: number | null;
  from: { commit: string; version: string | null };
  to: { commit: string; version: string | null };
  commits: number;
  backup: { id: number; filename: string } | null;
  dependencies: string[];
  migrations: string[];
  steps: StepRecord[];
  health: InstallHealth | null;
  failed_step?: string;
  error?: string;
  rollback?: { outcome: RestoreResult['outcome'] | 'not_started'; message: string; health: InstallHealth | null };
  install_state?: string;
  emergency_command?: string;
}

const healthError = (h: InstallHealth) =>
  'health check failed: ' + h.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.error ?? 'failed'}`).join('; ');

/** A failure before anything changed: the pre-checks' TaskError with its step. */
const refuse = (code: string, message: string, details?: unknown) => new TaskError(code, message, 'update.precheck', details);

interface Prechecked {
  env: PhpborgEnv;
  from: string;
  fromVersion: string | null;
  target: string;
  targetName: string;
  toVersion: string | null;
  commits: number;
  changed: string[];
}

async function precheck(ctx: TaskContext, p: ApplyParams, say: (pct: number, msg: string, params?: ProgressParams) => void): Promise<Prechecked | null> {
  const { config } = ctx;
  const dir = config.paths.code;
  const { remote, branch } = config.git;
  let env: PhpborgEnv;
  try {
    env = readEnv(config);
  } catch (e) {
    throw refuse('env_unreadable', (e as Error).message);
  }

  // the checkout: on the configured branch, clean
  const current = await git.currentBranch(dir).catch((e) => {
    throw refuse('not_a_checkout', `${dir} is not a usable git checkout: ${(e as Error).message}`);
  });
  if (current === null) {
    throw refuse('detached_head', `${dir} is on a detached HEAD; check out ${branch} first (git checkout ${branch}), nothing was changed`);
  }
  if (current !== branch) {
    throw refuse('wrong_branch', `${dir} is on branch ${current}, but updates follow ${branch} (config git.branch); nothing was changed`);
  }
  const dirty = await git.dirtyFiles(dir);
  if (dirty.length) {
    const shown = dirty.slice(0, 20).join(', ') + (dirty.length > 20 ? ` … (${dirty.length} in all)` : '');
    throw refuse(
      'dirty_tree',
      `the work tree has uncommitted changes, nothing was changed: ${shown}. Commit, stash or discard them, then update again`,
      { files: dirty },
    );
  }

  // nothing else in maintenance: an open journal means a window a dead helper left behind
  const open = openJournalEntries(ctx.ledger).filter((j) => j.job_id !== ctx.jobId);
  if (open.length) {
    throw refuse(
      'maintenance_open',
      `another maintenance window is still open (job ${open.map((j) => j.job_id ?? `journal #${j.id}`).join(', ')}); ` +
        'restart keeper (it recovers such windows at start) and try again; nothing was changed',
    );
  }

  // what to update to: fetched, a commit, a fast-forward of HEAD, on the configured branch
  say(2, `Fetching ${remote}/${branch}`);
  ctx.progress('update.fetch', 2, `Fetching ${remote}/${branch}`, { remote, branch });
  try {
    await git.fetch(dir, remote, branch, { signal: ctx.signal, onLine: (l) => l.trim() && ctx.log('info', l) });
    await giveBackToOwner(config);
  } catch (e) {
    throw new TaskError('fetch_failed', `cannot fetch ${remote}/${branch}, nothing was changed: ${(e as Error).message}`, 'update.fetch');
  }
  const from = await git.headCommit(dir);
  const tracking = git.remoteRef(remote, branch);
  const targetName = p.target ?? `${remote}/${branch}`;
  const target = await git.resolveCommit(dir, targetName === `${remote}/${branch}` ? tracking : targetName);
  if (!target) {
    throw refuse('target_not_commit', `"${targetName}" does not name a commit in ${dir} (after fetching ${remote}/${branch}); nothing was changed`);
  }
  const branchTip = await git.resolveCommit(dir, tracking);
  if (!branchTip) throw refuse('no_remote_branch', `${remote}/${branch} does not exist; check config git.remote and git.branch`);
  if (target === from) return null;
  if (!(await git.isAncestor(dir, from, target))) {
    const behind = await git.isAncestor(dir, target, from);
    throw refuse(
      'not_fast_forward',
      behind
        ? `${targetName} (${target.slice(0, 7)}) is older than the installed commit ${from.slice(0, 7)}: an update only moves forward (use a rollback to go back); nothing was changed`
        : `${targetName} (${target.slice(0, 7)}) is not a fast-forward of the installed commit ${from.slice(0, 7)} (the histories diverged); nothing was changed`,
    );
  }
  if (!(await git.isAncestor(dir, target, branchTip))) {
    throw refuse('not_on_branch', `${targetName} (${target.slice(0, 7)}) is not on ${remote}/${branch}; only commits of the configured branch are installed; nothing was changed`);
  }
  const [fromVersion, toVersion, commits, changed] = await Promise.all([
    git.describe(dir, from),
    git.describe(dir, target),
    git.countCommits(dir, from, target),
    git.changedFiles(dir, from, target),
  ]);

  // commands the steps need
  const plan = planDependencies(changed);
  const missing = await missingCommands(neededCommands(plan));
  if (missing.length) {
    const why = missing.map((m) => (m === 'composer' ? 'composer (composer.json/lock changed)' : m === 'npm' || m === 'node' ? `${m} (the frontend changed)` : m));
    throw refuse('missing_commands', `commands needed by this update are not installed: ${why.join(', ')}; install them and try again; nothing was changed`, { missing });
  }

  // free space: twice the install (code + database) where the backup goes and where the code lives
  say(4, 'Checking free space');
  const storage = getSettings(ctx.ledger, config.paths.storage).backup_storage_path;
  const size = (await installSize(config)) + (await databaseSizeEstimate(env).catch(() => 0));
  for (const path of [...new Set([storage, dir])]) {
    const free = await freeBytes(path);
    if (free !== null && free < 2 * size) {
      throw refuse(
        'insufficient_space',
        `not enough free space in ${path}: ${sizeHuman(free)} free, an update needs twice the install's ${sizeHuman(size)} (${sizeHuman(2 * size)}); nothing was changed`,
        { path, free_bytes: free, needed_bytes: 2 * size },
      );
    }
  }

  // no running phpBorg job (bounded wait)
  say(6, 'Waiting for running phpBorg jobs');
  try {
    await drain(env, {
      timeoutS: config.drain_timeout_s,
      forcible: false,
      signal: ctx.signal,
      onWait: (running, ms) => say(6, `Waiting for ${running.length} running phpBorg job(s)`, { running: running.length, waited_ms: ms }),
    });
  } catch (e) {
    if (e instanceof TaskError) throw refuse(e.code, `${e.message}; nothing was changed`, e.details);
    throw e;
  }
  return { env, from, fromVersion, target, targetName, toVersion, commits, changed };
}

export async function applyUpdate(outer: TaskContext, p: ApplyParams): Promise<ApplyResult | TaskOutcome<ApplyResult>> {
  // one bar for the whole job: the backup and the restore report inside their own ranges, never back
  let pct = 0;
  const ctx: TaskContext = {
    ...outer,
    progress(step, percent, message, params) {
      pct = Math.max(pct, percent);
      outer.progress(step, pct, message, params);
    },
  };
  const progress = ctx.progress;
  const { config } = ctx;
  const dir = config.paths.code;
  const steps: StepRecord[] = [];
  const timed = async <T>(step: string, percent: number, message: string, fn: () => Promise<T>, params?: ProgressParams): Promise<T> => {
    progress(step, percent, message, params);
    const t0 = performance.now();
    try {
      const value = await fn();
      steps.push({ step, ok: true, ms: Math.round(performance.now() - t0) });
      return value;
    } catch (e) {
      steps.push({ step, ok: false, ms: Math.round(performance.now() - t0), error: (e as Error).message });
      throw Object.assign(e as Error, { updateStep: step });
    }
  };

  // 1. pre-checks (and the fetch): a failure here changes nothing
  const pre = await timed('update.precheck', 0, 'Checking the installation', () =>
    precheck(ctx, p, (percent, message, params) => progress('update.precheck', percent, message, params)),
  );
  if (!pre) {
    const head = await git.headCommit(dir);
    const version = await git.describe(dir);
    const message = `already up to date at ${version ?? head.slice(0, 7)}: nothing to do`;
    progress('update.precheck', 100, message);
    return {
      updated: false,
      message,
      history_id: null,
      from: { commit: head, version },
      to: { commit: head, version },
      commits: 0,
      backup: null,
      dependencies: [],
      migrations: [],
      steps,
      health: null,
    };
  }
  const { env, from, target } = pre;
  const label = `${pre.fromVersion ?? from.slice(0, 7)} → ${pre.toVersion ?? target.slice(0, 7)}`;
  progress('update.precheck', 8, `Ready to update ${label} (${pre.commits} commit(s))`, { from: from, to: target, commits: pre.commits });

  // 2. the pre-update backup, mandatory
  const backup = await timed('update.backup', 8, 'Taking the pre-update backup', () =>
    createBackup(ctx, {
      type: 'pre_update',
      notes: `automatic backup before updating ${label}`,
      stepPrefix: 'update.backup',
      percentRange: [8, 40],
    }),
  ).catch((e) => {
    const inner = e instanceof TaskError ? `${e.message}` : (e as Error).message;
    throw new TaskError(e instanceof TaskError ? e.code : 'backup_failed', `the pre-update backup failed, the update did not start: ${inner}`, 'update.backup');
  });
  // kept until a newer update succeeds: it is what this update rolls back to
  setPinned(ctx.ledger, backup.id, true);

  // 3. the history row
  const historyId = insertUpdate(ctx.ledger, {
    job_id: ctx.jobId,
    from_commit: from,
    from_version: pre.fromVersion,
    to_commit: target,
    to_version: pre.toVersion,
    target: pre.targetName,
    backup_id: backup.id,
    actor_id: ctx.actor.id,
    actor_name: ctx.actor.name,
    started_at: ctx.now().toISOString(),
  });
  const result: ApplyResult = {
    updated: false,
    message: '',
    history_id: historyId,
    from: { commit: from, version: pre.fromVersion },
    to: { commit: target, version: pre.toVersion },
    commits: pre.commits,
    backup: { id: backup.id, filename: backup.filename },
    dependencies: [],
    migrations: [],
    steps,
    health: null,
  };

  const sm = serviceManager(config);
  let journalId: number | null = null;
  try {
    await timed('update.record', 41, `Recorded as update #${historyId}`, async () => {
      // the tracking table's baseline is the installed commit, whose files the installer ran
      const n = await ensureTracking(env, dir, from, ctx.now());
      if (n) ctx.log('info', `migration tracking started: ${n} migration(s) present at ${from.slice(0, 7)} recorded as applied`);
    });

    // 4. stop the units — after a last drain: nothing stops under a running phpBorg job
    const units = maintenanceUnits(config, env);
    await timed('update.stop_units', 43, `Stopping ${units.length} unit(s)`, async () => {
      await drain(env, {
        timeoutS: config.drain_timeout_s,
        forcible: false,
        signal: ctx.signal,
        onWait: (running, ms) => progress('update.stop_units', 43, `Waiting for ${running.length} running phpBorg job(s)`, { running: running.length, waited_ms: ms }),
      });
      journalId = openJournal(ctx.ledger, { jobId: ctx.jobId, units });
      journalUnitsStopping(ctx.ledger, journalId, units);
      await sm.stop(units);
    }, { units: units.join(',') });

    // 5. fast-forward
    await timed('update.fast_forward', 46, `Fast-forwarding to ${target.slice(0, 7)}`, async () => {
      const head = await git.headCommit(dir);
      if (head !== from) throw new Error(`HEAD moved during the update (${from.slice(0, 7)} → ${head.slice(0, 7)})`);
      if ((await git.dirtyFiles(dir)).length) throw new Error('the work tree changed during the update');
      await git.mergeFastForward(dir, target, { onLine: (l) => l.trim() && ctx.log('info', l) });
      const now = await git.headCommit(dir);
      if (now !== target) throw new Error(`HEAD is ${now.slice(0, 7)} after the merge, expected ${target.slice(0, 7)}`);
      await giveBackToOwner(config);
    });

    // 6. dependencies, only where the diff touches them
    const plan = planDependencies(pre.changed);
    result.dependencies = await timed(
      'update.dependencies',
      50,
      plan.composer || plan.frontend ? 'Installing dependencies' : 'No dependency changes',
      async () => {
        const done = await runDependencies(ctx, dir, plan, (m) => progress('update.dependencies', 52, m));
        await giveBackToOwner(config);
        return done;
      },
      { composer: plan.composer, frontend: plan.frontend },
    );

    // 7. system dependencies
    await timed('update.system_dependencies', 66, 'Checking system dependencies', async () => {
      const missing = await missingSystemDependencies(config);
      if (missing.length) throw new Error(`system commands required by the install are missing: ${missing.join(', ')}`);
    });

    // 8. migrations, in order, each recorded
    await timed('update.migrations', 68, 'Applying database migrations', async () => {
      const pending = await pendingMigrations(env, dir);
      for (const [i, name] of pending.entries()) {
        progress('update.migrations', 68 + Math.round((7 * i) / pending.length), `Migration ${name}`, { file: name, index: i + 1, total: pending.length });
        await applyMigration(env, dir, name, ctx.now(), ctx.signal);
        result.migrations.push(name);
        ctx.log('info', `migration ${name} applied`);
      }
      if (!pending.length) progress('update.migrations', 75, 'No new migrations');
    });

    // 9. start the units on the new code
    const all = allUnits(config, env);
    await timed('update.start_units', 78, `Starting ${all.length} unit(s)`, async () => {
      await sm.start(all);
      if (journalId !== null) {
        journalUnitsStarted(ctx.ledger, journalId);
        closeJournal(ctx.ledger, journalId);
        journalId = null;
      }
    });

    // 10. health on the new code, retried until the deadline
    result.health = await timed('update.health', 80, 'Checking health: units, database, migrations, Redis, HTTP', async () => {
      const h = await waitHealthy(config, env, ctx.signal, async () => [await migrationsRecordedCheck(env, dir)]);
      result.health = h;
      if (!h.ok) throw new Error(healthError(h));
      return h;
    });
  } catch (e) {
    const failedStep = (e as { updateStep?: string }).updateStep ?? 'update.health';
    return rollBack(ctx, result, { failedStep, error: (e as Error).message, journalId, progress, pct, failedMigration: (e as { file?: string }).file ?? null });
  }

  // success: older pre-update backups are no longer the newest safe point
  for (const id of olderUpdateBackupIds(ctx.ledger, historyId)) if (id !== backup.id && getBackup(ctx.ledger, id)) setPinned(ctx.ledger, id, false);
  result.updated = true;
  result.to.version = await git.describe(dir);
  result.message = `updated ${pre.fromVersion ?? from.slice(0, 7)} → ${result.to.version ?? target.slice(0, 7)} (${pre.commits} commit(s))`;
  finishUpdate(ctx.ledger, historyId, {
    status: 'succeeded',
    finished_at: ctx.now().toISOString(),
    to_commit: target,
    to_version: result.to.version,
    details: { steps, dependencies: result.dependencies, migrations: result.migrations, backup: result.backup },
  });
  progress('update.health', 100, result.message);
  return result;
}

interface Failure {
  failedStep: string;
  error: string;
  journalId: number | null;
  progress: (step: string, percent: number, message: string, params?: ProgressParams) => void;
  pct: number;
  /** the migration that failed (it may have run partly: MariaDB commits DDL statement by statement) */
  failedMigration: string | null;
}

/** Restores the pre-update backup after a failure and records the truth in the history row. */
async function rollBack(ctx: TaskContext, result: ApplyResult, f: Failure): Promise<TaskOutcome<ApplyResult>> {
  const { config } = ctx;
  const historyId = result.history_id!;
  const backup = result.backup!;
  result.failed_step = f.failedStep;
  result.error = f.error;
  const reason = `update failed at ${f.failedStep}: ${f.error}`;
  ctx.log('error', reason);
  f.progress('update.rollback', Math.max(f.pct, 80), `Rolling back to ${backup.filename}`, { reason, backup_id: backup.id });

  let r: RestoreResult | null = null;
  let refused: string | null = null;
  try {
    const loc = await locateArchive(config, ctx.ledger, { backup_id: backup.id });
    r = await restoreInstall(ctx, {
      file: loc.file,
      passphrase: loc.passphrase,
      expected: loc.expected,
      backupId: backup.id,
      // the pre-update backup IS the safety point; a second one would hold the broken update
      safetyBackup: 'skip',
      storageDir: getSettings(ctx.ledger, config.paths.storage).backup_storage_path,
      percent: [Math.max(f.pct, 81), 99],
    });
  } catch (e) {
    // restoreInstall refused before changing anything (e.g. the archive is unreadable)
    refused = (e as Error).message;
  }
  if (f.journalId !== null) {
    // the restore started the units (or tried to): this window is over either way
    await serviceManager(config).start(allUnits(config, readEnvOr(config))).catch(() => {});
    journalUnitsStarted(ctx.ledger, f.journalId);
    closeJournal(ctx.ledger, f.journalId);
  }
  const now = ctx.now().toISOString();

  if (r && r.outcome === 'restored') {
    result.rollback = { outcome: 'restored', message: r.message, health: r.health };
    result.message = `${reason}; rolled back to ${backup.filename}`;
    finishUpdate(ctx.ledger, historyId, {
      status: 'rolled_back',
      finished_at: now,
      failed_step: f.failedStep,
      error: f.error,
      details: { steps: result.steps, rollback: result.rollback, backup, migrations: result.migrations, dependencies: result.dependencies },
    });
    ctx.progress('update.rollback', 100, result.message);
    return { status: 'rolled_back', result };
  }

  // the rollback failed too: say where things stand and how to get out
  const emergency = r?.emergency_command ?? `scripts/emergency-restore ${backup.id} --config ${ctx.configPath}`;
  const state =
    r?.install_state ??
    (refused
      ? `State: the code is at ${(await git.headCommit(config.paths.code).catch(() => 'unknown')).slice(0, 12)}, ` +
        `migrations applied by this update: ${result.migrations.length ? result.migrations.join(', ') : 'none'}` +
        (f.failedMigration ? `, ${f.failedMigration} failed and may have run partly` : '') +
        '; the pre-update backup could not be restored.'
      : 'State: unknown.');
  const rbError = refused ?? r?.rollback?.error ?? r?.error ?? r?.message ?? 'unknown';
  result.rollback = { outcome: r?.outcome ?? 'not_started', message: r?.message ?? refused ?? '', health: r?.rollback?.health ?? r?.health ?? null };
  result.install_state = state;
  result.emergency_command = emergency;
  result.message = `${reason}; the rollback to ${backup.filename} failed too: ${rbError}. ${state} Run: ${emergency}`;
  finishUpdate(ctx.ledger, historyId, {
    status: 'failed',
    finished_at: now,
    failed_step: f.failedStep,
    error: f.error,
    details: { steps: result.steps, rollback: result.rollback, rollback_error: rbError, install_state: state, emergency_command: emergency, backup },
  });
  throw new TaskError('update_failed', result.message, f.failedStep, result);
}

function readEnvOr(config: KeeperConfig): Pick<PhpborgEnv, 'WORKER_POOL_SIZE'> {
  try {
    return readEnv(config);
  } catch {
    return { WORKER_POOL_SIZE: 4 };
  }
}

export const applyTask = defineTask({
  name: 'update.apply',
  params: ApplyParams,
  maintenance: true,
  run: applyUpdate,
});
