// Task update.apply: fast-forward phpBorg to a newer commit of the configured branch, as a plan run by
// the operation runner: a mandatory pre-update backup (the safety point), dependencies where the diff
// touches them, tracked migrations, a health check on the new code. A failure once the install is
// touched is undone by restoring the pre-update backup (the undo of update.record).
//
// Steps (stable keys): update.precheck (+ update.fetch) → update.backup → update.stop_units →
// update.record → update.fast_forward → update.dependencies → update.system_dependencies →
// update.migrations → update.start_units → update.health; on failure update.rollback.
import * as v from 'valibot';
import type { KeeperConfig } from '../../runtime/config.ts';
import { allUnits, maintenanceUnits, readEnv, type PhpborgEnv } from '../../runtime/install.ts';
import * as git from '../../runtime/git.ts';
import { drain } from '../../runtime/maintenance.ts';
import { databaseSizeEstimate } from '../../runtime/mariadb.ts';
import { errorMessage } from '../../runtime/error-message.ts';
import { operationError, runOperation, type OperationContext, type OperationResult, type Plan, type Step } from '../../runtime/operation/index.ts';
import { waitHealthy, type InstallHealth } from '../../runtime/probes.ts';
import { serviceManager } from '../../runtime/service-manager.ts';
import { defineTask, TaskError, type ProgressParams, type TaskContext, type TaskOutcome } from '../../runtime/task.ts';
import { getBackup, setPinned, sizeHuman } from '../../state/catalog.ts';
import { openOperations } from '../../state/operations.ts';
import { getSettings } from '../../state/settings.ts';
import { finishUpdate, insertUpdate, olderUpdateBackupIds } from '../../state/updates.ts';
import { createBackup } from '../backup/core.ts';
import { healthError } from '../install/steps.ts';
import { restoreInstall, type RestoreResult } from '../restore/apply.ts';
import { locateArchive } from '../restore/locate.ts';
import { checkPlatformRequirements, missingCommands, missingSystemDependencies, neededCommands, planDependencies, runDependencies } from './dependencies.ts';
import { applyMigration, ensureTracking, migrationsRecordedCheck, pendingMigrations } from './migrations.ts';
import { giveBackToOwner } from './ownership.ts';
import { installSize, freeBytes } from './space.ts';
import { autoNote } from '../backup/auto-notes.ts';

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

export interface ApplyResult extends OperationResult {
  updated: boolean;
  history_id: number | null;
  from: { commit: string; version: string | null };
  to: { commit: string; version: string | null };
  commits: number;
  backup: { id: number; filename: string } | null;
  dependencies: string[];
  migrations: string[];
  health: InstallHealth | null;
  /** the restore of the pre-update backup, when a failure was undone */
  rollback?: { outcome: RestoreResult['outcome']; message: string; health: InstallHealth | null };
}

/** A refusal of the pre-checks: nothing changed. */
const refuse = (code: string, message: string, details?: unknown) => new TaskError(code, message, 'update.precheck', details, { changed: false });

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
    throw refuse('env_unreadable', errorMessage(e));
  }

  // the checkout: on the configured branch, clean
  const current = await git.currentBranch(dir).catch((e) => {
    throw refuse('not_a_checkout', `${dir} is not a usable git checkout: ${errorMessage(e)}`);
  });
  if (current === null) {
    throw refuse('detached_head', `${dir} is on a detached HEAD; check out ${branch} first (git checkout ${branch})`);
  }
  if (current !== branch) {
    throw refuse('wrong_branch', `${dir} is on branch ${current}, but updates follow ${branch} (config git.branch)`);
  }
  const dirty = await git.dirtyFiles(dir);
  if (dirty.length) {
    const shown = dirty.slice(0, 20).join(', ') + (dirty.length > 20 ? ` … (${dirty.length} in all)` : '');
    throw refuse(
      'dirty_tree',
      `the work tree has uncommitted changes: ${shown}. Commit, stash or discard them, then update again`,
      { files: dirty },
    );
  }

  // nothing else in progress: an open journal entry is an operation not finished or not recovered yet
  const open = openOperations(ctx.ledger).filter((j) => j.job_id !== ctx.jobId);
  if (open.length) {
    throw refuse(
      'maintenance_open',
      `another operation is not finished (job ${open.map((j) => j.job_id ?? `operation #${j.id}`).join(', ')}); ` +
        'wait for it or for its recovery (keeper recovers it as soon as its process is gone), then try again',
    );
  }

  // what to update to: fetched, a commit, a fast-forward of HEAD, on the configured branch
  say(2, `Fetching ${remote}/${branch}`);
  ctx.progress('update.fetch', 2, `Fetching ${remote}/${branch}`, { remote, branch });
  try {
    await git.fetch(dir, remote, branch, { signal: ctx.signal, onLine: (l) => l.trim() && ctx.log('info', l) });
    await giveBackToOwner(config);
  } catch (e) {
    throw new TaskError('fetch_failed', `cannot fetch ${remote}/${branch}: ${errorMessage(e)}`, 'update.fetch', undefined, { changed: false, cause: e });
  }
  const from = await git.headCommit(dir);
  const tracking = git.remoteRef(remote, branch);
  const targetName = p.target ?? `${remote}/${branch}`;
  const target = await git.resolveCommit(dir, targetName === `${remote}/${branch}` ? tracking : targetName);
  if (!target) {
    throw refuse('target_not_commit', `"${targetName}" does not name a commit in ${dir} (after fetching ${remote}/${branch})`);
  }
  const branchTip = await git.resolveCommit(dir, tracking);
  if (!branchTip) throw refuse('no_remote_branch', `${remote}/${branch} does not exist; check config git.remote and git.branch`);
  if (target === from) return null;
  if (!(await git.isAncestor(dir, from, target))) {
    const behind = await git.isAncestor(dir, target, from);
    throw refuse(
      'not_fast_forward',
      behind
        ? `${targetName} (${target.slice(0, 7)}) is older than the installed commit ${from.slice(0, 7)}: an update only moves forward (use a rollback to go back)`
        : `${targetName} (${target.slice(0, 7)}) is not a fast-forward of the installed commit ${from.slice(0, 7)} (the histories diverged)`,
    );
  }
  if (!(await git.isAncestor(dir, target, branchTip))) {
    throw refuse('not_on_branch', `${targetName} (${target.slice(0, 7)}) is not on ${remote}/${branch}; only commits of the configured branch are installed`);
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
    throw refuse('missing_commands', `commands needed by this update are not installed: ${why.join(', ')}; install them and try again`, { missing });
  }

  // the target's PHP version and extensions, before the units stop and the code moves
  if (plan.composer) {
    say(3, 'Checking the target commit\'s platform requirements (composer check-platform-reqs)');
    const pc = await checkPlatformRequirements(dir, target, ctx.signal).catch((e: unknown) => ({ ok: false, detail: errorMessage(e), problems: [] as string[] }));
    ctx.log(pc.ok ? 'info' : 'error', pc.detail);
    if (!pc.ok) {
      throw refuse(
        'platform_requirements',
        `${toVersion ?? target.slice(0, 7)} needs what this server lacks (${pc.detail})${pc.problems.length ? ': ' + pc.problems.join(' | ') : ''}`,
        { problems: pc.problems },
      );
    }
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
        `not enough free space in ${path}: ${sizeHuman(free)} free, an update needs twice the install's ${sizeHuman(size)} (${sizeHuman(2 * size)})`,
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
    if (e instanceof TaskError) throw refuse(e.code, e.message, e.details);
    throw e;
  }
  return { env, from, fromVersion, target, targetName, toVersion, commits, changed };
}

interface UpdateState {
  params: ApplyParams;
  pre: Prechecked | null;
  /** settled by the pre-checks: nothing to do */
  upToDate: boolean;
  backup: { id: number; filename: string; file: string } | null;
  historyId: number | null;
  dependencies: string[];
  migrations: string[];
  health: InstallHealth | null;
  /** the restore of the pre-update backup, when a failure was undone */
  rollback: RestoreResult | null;
  /** the commit the checkout was moved to */
  codeAt: string | null;
}

const updating = (s: UpdateState) => !s.upToDate;

/** Drain, then stop the units (journaled first); undo: start them. */
const stopUnits: Step<UpdateState> = {
  key: 'update.stop_units',
  weight: 3,
  message: 'Stopping the units',
  when: updating,
  undoFirst: true,
  async run(op, s) {
    const env = s.pre!.env;
    const units = maintenanceUnits(op.config, env);
    // nothing stops under a running phpBorg job
    await drain(env, {
      timeoutS: op.config.drain_timeout_s,
      forcible: false,
      signal: op.signal,
      onWait: (running, ms) => op.step(0, `Waiting for ${running.length} running phpBorg job(s)`, { running: running.length, waited_ms: ms }),
    });
    op.step(0.5, `Stopping ${units.length} unit(s)`, { units: units.join(',') });
    op.unitsStopping(units);
    await serviceManager(op.config).stop(units);
  },
  async undo(op, s) {
    await serviceManager(op.config).start(allUnits(op.config, s.pre!.env));
    op.unitsStarted();
  },
};

/**
 * The history row and the migration baseline (phpBorg's database gets its tracking table). From here
 * on the install is touched; the undo restores the pre-update backup, which reverses this step and
 * every later one (code, dependencies, migrations).
 */
const record: Step<UpdateState> = {
  key: 'update.record',
  weight: 2,
  message: 'Recording the update',
  touches: ['database'],
  when: updating,
  async run(op, s) {
    const pre = s.pre!;
    s.historyId = insertUpdate(op.ledger, {
      job_id: op.jobId,
      from_commit: pre.from,
      from_version: pre.fromVersion,
      to_commit: pre.target,
      to_version: pre.toVersion,
      target: pre.targetName,
      backup_id: s.backup!.id,
      actor_id: op.actor.id,
      actor_name: op.actor.name,
      started_at: op.now().toISOString(),
    });
    op.step(0.5, `Recorded as update #${s.historyId}`, { history_id: s.historyId });
    // the tracking table's baseline is the installed commit, whose files the installer ran
    const n = await ensureTracking(pre.env, op.config.paths.code, pre.from, op.now());
    if (n) op.log('info', `migration tracking started: ${n} migration(s) present at ${pre.from.slice(0, 7)} recorded as applied`);
  },
  async undo(op, s) {
    s.rollback = await restorePreUpdate(op, s);
    if (s.rollback.outcome !== 'succeeded') throw new Error(s.rollback.message);
  },
};

/** The pre-update backup restored like any restore (no second safety backup: it is the safety point). */
async function restorePreUpdate(op: OperationContext, s: UpdateState): Promise<RestoreResult> {
  const loc = await locateArchive(op.config, op.ledger, { backup_id: s.backup!.id });
  const [lo, hi] = op.stepRange();
  return restoreInstall(
    op,
    {
      file: loc.file,
      passphrase: loc.passphrase,
      expected: loc.expected,
      backupId: s.backup!.id,
      safetyMode: 'skip',
      storageDir: getSettings(op.ledger, op.config.paths.storage).backup_storage_path,
    },
    { kind: 'rollback', percent: [Math.max(lo, 80), Math.max(hi, 99)], journalId: op.journalId },
  );
}

export function updatePlan(ctx: TaskContext, p: ApplyParams): Plan<UpdateState> {
  const dir = ctx.config.paths.code;
  return {
    kind: 'update',
    rollbackKey: 'update.rollback',
    state: { params: p, pre: null, upToDate: false, backup: null, historyId: null, dependencies: [], migrations: [], health: null, rollback: null, codeAt: null },
    safetyName: (s) => s.backup?.filename ?? null,
    emergencyTarget: (s) => (s.backup ? { id: s.backup.id, file: s.backup.file } : null),
    describeState: (s, touched) =>
      `State: the code is at ${(s.codeAt ?? s.pre?.from ?? 'an unknown commit').slice(0, 12)}${touched.includes('code') ? ' (dependencies possibly half-installed)' : ''}; ` +
      `migrations applied by this update: ${s.migrations.length ? s.migrations.join(', ') : 'none'}; ` +
      `the pre-update backup could not be restored${s.rollback ? ` (${s.rollback.message})` : ''}; the units are stopped.`,
    steps: [
      {
        key: 'update.precheck',
        weight: 8,
        message: 'Checking the installation',
        async run(op, s) {
          s.pre = await precheck(op, p, (percent, message, params) => op.step(percent / 8, message, params));
          s.upToDate = s.pre === null;
          if (s.pre) {
            const label = `${s.pre.fromVersion ?? s.pre.from.slice(0, 7)} → ${s.pre.toVersion ?? s.pre.target.slice(0, 7)}`;
            op.step(1, `Ready to update ${label} (${s.pre.commits} commit(s))`, { from: s.pre.from, to: s.pre.target, commits: s.pre.commits });
          }
        },
      },
      {
        key: 'update.backup',
        weight: 32,
        message: 'Taking the pre-update backup',
        when: updating,
        async run(op, s) {
          const pre = s.pre!;
          const label = `${pre.fromVersion ?? pre.from.slice(0, 7)} → ${pre.toVersion ?? pre.target.slice(0, 7)}`;
          const b = await createBackup(op, { type: 'pre_update', notes: autoNote('before_update', { from: pre.fromVersion ?? pre.from.slice(0, 7), to: pre.toVersion ?? pre.target.slice(0, 7) }), stepPrefix: 'update.backup', percentRange: op.stepRange() }).catch(
            (e: unknown) => {
              throw new TaskError(e instanceof TaskError ? e.code : 'backup_failed', `the pre-update backup failed, the update did not start: ${errorMessage(e)}`, 'update.backup', undefined, { cause: e });
            },
          );
          s.backup = { id: b.id, filename: b.filename, file: b.file };
          // kept until a newer update succeeds: it is what this update rolls back to
          setPinned(op.ledger, b.id, true);
          op.setSafetyPoint({ id: b.id, file: b.file, filename: b.filename });
        },
      },
      stopUnits,
      record,
      {
        key: 'update.fast_forward',
        weight: 4,
        message: (s) => `Fast-forwarding to ${s.pre!.target.slice(0, 7)}`,
        touches: ['code'],
        when: updating,
        async run(op, s) {
          const { from, target } = s.pre!;
          const head = await git.headCommit(dir);
          if (head !== from) throw new Error(`HEAD moved during the update (${from.slice(0, 7)} → ${head.slice(0, 7)})`);
          if ((await git.dirtyFiles(dir)).length) throw new Error('the work tree changed during the update');
          await git.mergeFastForward(dir, target, { onLine: (l) => l.trim() && op.log('info', l) });
          const now = await git.headCommit(dir);
          s.codeAt = now;
          if (now !== target) throw new Error(`HEAD is ${now.slice(0, 7)} after the merge, expected ${target.slice(0, 7)}`);
          await giveBackToOwner(op.config);
        },
      },
      {
        key: 'update.dependencies',
        weight: 16,
        message: (s) => {
          const plan = planDependencies(s.pre!.changed);
          return plan.composer || plan.frontend ? 'Installing dependencies' : 'No dependency changes';
        },
        touches: ['code'],
        when: updating,
        async run(op, s) {
          const plan = planDependencies(s.pre!.changed);
          s.dependencies = await runDependencies(op, dir, plan, (m) => op.step(0.2, m));
          await giveBackToOwner(op.config);
        },
      },
      {
        key: 'update.system_dependencies',
        weight: 2,
        message: 'Checking system dependencies',
        when: updating,
        async run(op) {
          const missing = await missingSystemDependencies(op.config);
          if (missing.length) throw new Error(`system commands required by the install are missing: ${missing.join(', ')}`);
        },
      },
      {
        key: 'update.migrations',
        weight: 8,
        message: 'Applying database migrations',
        touches: ['database'],
        when: updating,
        async run(op, s) {
          const env = s.pre!.env;
          const pending = await pendingMigrations(env, dir);
          for (const [i, name] of pending.entries()) {
            op.step(i / pending.length, `Migration ${name}`, { file: name, index: i + 1, total: pending.length });
            await applyMigration(env, dir, name, op.now(), op.signal);
            s.migrations.push(name);
            op.log('info', `migration ${name} applied`);
          }
          if (!pending.length) op.step(1, 'No new migrations');
        },
      },
      {
        key: 'update.start_units',
        weight: 3,
        message: 'Starting the units on the new code',
        when: updating,
        undoFirst: true,
        async run(op, s) {
          await serviceManager(op.config).start(allUnits(op.config, s.pre!.env));
          op.unitsStarted();
        },
        async undo(op, s) {
          const units = maintenanceUnits(op.config, s.pre!.env);
          op.unitsStopping(units);
          await serviceManager(op.config).stop(units);
        },
      },
      {
        key: 'update.health',
        weight: 8,
        message: 'Checking health: units, database, migrations, Redis, HTTP',
        when: updating,
        async run(op, s) {
          const env = s.pre!.env;
          s.health = await waitHealthy(op.config, env, op.signal, async () => [await migrationsRecordedCheck(env, dir)]);
          if (!s.health.ok) throw new Error(healthError(s.health));
        },
      },
    ],
  };
}

export async function applyUpdate(ctx: TaskContext, p: ApplyParams): Promise<ApplyResult | TaskOutcome<ApplyResult>> {
  const dir = ctx.config.paths.code;
  const plan = updatePlan(ctx, p);
  const r = await runOperation(ctx, plan);
  const s = plan.state;
  const head = s.pre?.from ?? (await git.headCommit(dir).catch(() => 'unknown'));
  const result: ApplyResult = {
    ...r,
    updated: false,
    history_id: s.historyId,
    from: { commit: head, version: s.pre?.fromVersion ?? (await git.describe(dir)) },
    to: { commit: s.pre?.target ?? head, version: s.pre?.toVersion ?? (await git.describe(dir)) },
    commits: s.pre?.commits ?? 0,
    backup: s.backup ? { id: s.backup.id, filename: s.backup.filename } : null,
    dependencies: s.dependencies,
    migrations: s.migrations,
    health: s.health,
    ...(s.rollback ? { rollback: { outcome: s.rollback.outcome, message: s.rollback.message, health: s.rollback.health } } : {}),
  };

  if (r.outcome === 'succeeded' && s.upToDate) {
    result.message = `already up to date at ${result.from.version ?? head.slice(0, 7)}: nothing to do`;
    ctx.progress('update.precheck', 100, result.message);
    return result;
  }
  const historyId = s.historyId;
  if (r.outcome === 'succeeded' && historyId !== null) {
    // older pre-update backups are no longer the newest safe point
    for (const id of olderUpdateBackupIds(ctx.ledger, historyId)) if (id !== s.backup!.id && getBackup(ctx.ledger, id)) setPinned(ctx.ledger, id, false);
    result.updated = true;
    result.to.version = await git.describe(dir);
    result.message = `updated ${result.from.version ?? head.slice(0, 7)} → ${result.to.version ?? result.to.commit.slice(0, 7)} (${result.commits} commit(s))`;
    finishUpdate(ctx.ledger, historyId, {
      status: 'succeeded',
      finished_at: ctx.now().toISOString(),
      to_commit: result.to.commit,
      to_version: result.to.version,
      details: { steps: r.steps, dependencies: s.dependencies, migrations: s.migrations, backup: result.backup },
    });
    ctx.progress('update.health', 100, result.message);
    return result;
  }
  if (historyId !== null) {
    finishUpdate(ctx.ledger, historyId, {
      status: r.outcome === 'rolled_back' ? 'rolled_back' : 'failed',
      finished_at: ctx.now().toISOString(),
      failed_step: r.failed_step ?? null,
      error: r.error?.message ?? r.message,
      details: {
        steps: r.steps,
        rollback: result.rollback ?? null,
        backup: result.backup,
        migrations: s.migrations,
        dependencies: s.dependencies,
        ...(r.outcome === 'failed' ? { install_state: r.install_state, emergency_command: r.emergency_command } : {}),
      },
    });
  }
  if (r.outcome === 'rolled_back') {
    ctx.progress('update.rollback', 100, result.message);
    return { status: 'rolled_back', result };
  }
  throw operationError(result, 'update_failed');
}

export const applyTask = defineTask({
  name: 'update.apply',
  params: ApplyParams,
  run: applyUpdate,
});
