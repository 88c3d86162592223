// Task operation.recover: finishes an operation whose process died (SIGKILL, OOM, reboot), from its
// journal entries. Run in the job of the dead helper (or in a job of its own for the emergency
// script's entries), as soon as the runtime sees the process gone:
//   - nothing of the install touched → remove the temporaries, start the units again; job failed,
//     nothing was changed;
//   - touched, and a safety point exists → restore it with the restore plan (units, health included);
//     job rolled_back, "interrupted at <step>";
//   - touched, no safety point → the units stay stopped on the half-changed install, the entry is
//     marked inconsistent (health and status report it) and the error names the emergency command.
import { removeTree } from '../../runtime/remove-tree.ts';
import { basename, dirname } from 'node:path';
import * as v from 'valibot';
import { errorMessage } from '../../runtime/error-message.ts';
import { dropScratchDatabase } from '../../runtime/mariadb-admin.ts';
import { emergencyCommand } from '../../runtime/operation/index.ts';
import { serviceManager } from '../../runtime/service-manager.ts';
import { sweepTemp } from '../../runtime/temp.ts';
import { defineTask, TaskError, type TaskContext, type TaskOutcome } from '../../runtime/task.ts';
import { failUnfinished, listBackups } from '../../state/catalog.ts';
import {
  claimOperation,
  closeOperation,
  dropTemp,
  getOperation,
  settleInconsistent,
  unitsStarted,
  type InstallPart,
  type OperationEntry,
} from '../../state/operations.ts';
import { getSettings } from '../../state/settings.ts';
import { finishUpdate, updateOfJob } from '../../state/updates.ts';
import { removePartials } from '../../archive/index.ts';
import { locateArchive } from '../restore/locate.ts';
import { moveExcludedBack } from '../restore/files.ts';
import { codeExcluder } from '../backup/sources.ts';
import { restoreInstall, type RestoreResult } from '../restore/apply.ts';

export const RecoverParams = v.strictObject({
  operation_ids: v.pipe(v.array(v.pipe(v.number(), v.integer(), v.minValue(1))), v.minLength(1), v.maxLength(50)),
});

export interface RecoveryResult {
  /** the step the operation was at when its process died */
  interrupted_at: string | null;
  kind: string;
  message: string;
  changed: boolean;
  safety_backup: { id: number | null; filename: string } | null;
  restore: RestoreResult | null;
  removed: string[];
  units_started: string[];
}

// an entry whose recoveries keep dying is not tried again
const MAX_RECOVERIES = 3;

/** Removes an entry's temporaries (asides too unless `keepAsides`; scratch databases dropped) and the archive writer's partials beside them. */
async function removeTemps(ctx: TaskContext, e: OperationEntry, keepAsides: boolean): Promise<string[]> {
  const removed: string[] = [];
  const dirs = new Set<string>();
  for (const t of e.temp) {
    if (keepAsides && t.aside) continue;
    try {
      if (t.database) {
        // a scratch database (the restore drill's): dropped as the MariaDB admin, never a live one
        await dropScratchDatabase(ctx.config, t.path);
        dropTemp(ctx.ledger, e.id, [t.path]);
        removed.push(`database ${t.path}`);
        continue;
      }
      await removeTree(t.path);
      dropTemp(ctx.ledger, e.id, [t.path]);
      removed.push(t.path);
      dirs.add(dirname(t.path));
    } catch (err) {
      ctx.log('warn', `could not remove ${t.path}: ${errorMessage(err)}`);
    }
  }
  for (const d of dirs) removed.push(...(await removePartials(d).catch(() => [])));
  return removed;
}

async function startUnits(ctx: TaskContext, e: OperationEntry): Promise<string[]> {
  if (!e.units_stopped || !e.units.length) return [];
  await serviceManager(ctx.config).start(e.units);
  unitsStarted(ctx.ledger, e.id);
  return e.units;
}

export async function recoverOperations(ctx: TaskContext, ids: number[]): Promise<RecoveryResult | TaskOutcome<RecoveryResult>> {
  const entries = ids
    .map((id) => getOperation(ctx.ledger, id))
    .filter((e): e is OperationEntry => e !== null && e.status === 'open')
    .sort((a, b) => a.id - b.id);
  if (!entries.length) throw new TaskError('nothing_to_recover', `operations ${ids.join(', ')} are not open: nothing to recover`, 'recovery.start');
  for (const e of entries) claimOperation(ctx.ledger, e.id, process.pid);
  // the dead process's defaults files and scratch dirs under <paths.state>/tmp
  for (const dir of await sweepTemp(ctx.config.paths.state).catch(() => [])) ctx.log('info', `removed ${dir}`);
  // the outermost entry is the operation; later ones are work nested in it (its safety backup)
  const outer = entries[0];
  const step = [...entries].reverse().find((e) => e.step)?.step ?? null;
  const touched = [...new Set(entries.flatMap((e) => e.touched))] as InstallPart[];
  const safety = entries.find((e) => e.safety)?.safety ?? null;
  const jobId = outer.job_id;
  const result: RecoveryResult = {
    interrupted_at: step,
    kind: outer.kind,
    message: '',
    changed: touched.length > 0,
    safety_backup: safety ? { id: safety.id, filename: safety.filename } : null,
    restore: null,
    removed: [],
    units_started: [],
  };
  const reason = `the ${outer.kind} was interrupted at ${step ?? 'its start'} (its process died)`;
  ctx.progress('recovery.start', 0, `Recovering: ${reason}`, { step, touched: touched.join(',') || 'nothing' });
  const closeAll = (status: 'closed' | 'inconsistent', note: string) => entries.forEach((e) => closeOperation(ctx.ledger, e.id, status, note));
  const history = jobId ? updateOfJob(ctx.ledger, jobId) : null;
  const finishHistory = (status: 'rolled_back' | 'failed', details: Record<string, unknown>) => {
    if (history?.status === 'running') {
      finishUpdate(ctx.ledger, history.id, { status, finished_at: ctx.now().toISOString(), failed_step: step, error: reason, details: { interrupted: true, ...details } });
    }
  };

  if (entries.some((e) => e.recoveries >= MAX_RECOVERIES)) {
    const message = `${reason}, and its recovery failed ${MAX_RECOVERIES} times; the units are left as they are. Check the install (keeper status)`;
    closeAll(touched.length ? 'inconsistent' : 'closed', message);
    finishHistory('failed', {});
    throw new TaskError('recovery_failed', message, 'recovery.start', result, { changed: touched.length > 0 });
  }

  // 1. nothing of the install changed: clean up and start again
  if (!touched.length) {
    ctx.progress('recovery.cleanup', 30, 'Removing temporaries and starting the units again');
    for (const e of [...entries].reverse()) {
      result.removed.push(...(await removeTemps(ctx, e, false)));
      if (e.job_id) failUnfinished(ctx.ledger, e.job_id);
      result.units_started.push(...(await startUnits(ctx, e)));
    }
    closeAll('closed', `recovered: ${reason}; nothing of the install had changed`);
    finishHistory('failed', { changed: false });
    // a backup that died after its archive was complete (retention, the last report) keeps it
    const kept = jobId ? listBackups(ctx.ledger).filter((b) => b.job_id === jobId && b.status === 'succeeded').map((b) => b.filename) : [];
    const done = kept.length ? `; the archive ${kept.join(', ')} was complete and is kept` : '';
    result.message = `${reason}; its temporaries were removed and the units started again${done}`;
    ctx.progress('recovery.done', 100, result.message);
    throw new TaskError('interrupted', result.message, step ?? 'recovery.start', result, { changed: false });
  }

  // the half-changed install's scratch files go (plain-text dumps, staging); what was moved aside stays
  for (const e of [...entries].reverse()) result.removed.push(...(await removeTemps(ctx, e, true)));

  // 2. touched, with a safety point: restore it
  if (safety) {
    ctx.progress('recovery.rollback', 5, `Rolling back to ${safety.filename}`, { backup: safety.filename });
    let restore: RestoreResult | null = null;
    let refused: string | null = null;
    try {
      const loc = await locateArchive(ctx.config, ctx.ledger, safety.id !== null ? { backup_id: safety.id } : { file: safety.file });
      restore = await restoreInstall(
        ctx,
        {
          file: loc.file,
          passphrase: loc.passphrase,
          expected: loc.expected,
          backupId: safety.id,
          safetyMode: 'skip',
          force: true,
          // an update moved the code on: its node_modules belong to the newer code, not to the safety point's
          keepExcludedDirs: outer.kind !== 'update',
          storageDir: getSettings(ctx.ledger, ctx.config.paths.storage).backup_storage_path,
        },
        { kind: 'recovery', percent: [5, 95], journalId: outer.id },
      );
    } catch (e) {
      refused = errorMessage(e);
    }
    result.restore = restore;
    if (restore?.outcome === 'succeeded') {
      // the code tree moved aside is the install as it was: the dirs an archive never holds come back from it
      const code = ctx.config.paths.code;
      for (const t of entries.flatMap((e) => e.temp)) {
        if (!t.aside || dirname(t.path) !== dirname(code) || !basename(t.path).startsWith(`.${basename(code)}.keeper-old-`)) continue;
        const back = await moveExcludedBack(t.path, code, codeExcluder(ctx.config.exclude_dirs)).catch((e: unknown) => {
          ctx.log('warn', `could not bring back the excluded dirs from ${t.path}: ${errorMessage(e)}`);
          return [];
        });
        if (back.length) ctx.log('info', `brought back from the previous code tree: ${back.join(', ')}`);
      }
      for (const e of entries) {
        result.removed.push(...(await removeTemps(ctx, e, false)));
        if (e.job_id) failUnfinished(ctx.ledger, e.job_id);
      }
      closeAll('closed', `recovered: ${reason}; rolled back to ${safety.filename}`);
      settleInconsistent(ctx.ledger, outer.id);
      result.changed = false;
      result.message = `${reason}; rolled back to ${safety.filename}`;
      finishHistory('rolled_back', { rollback: { outcome: 'succeeded', backup: safety } });
      ctx.progress('recovery.done', 100, result.message);
      return { status: 'rolled_back', result };
    }
    const why = refused ?? restore?.message ?? 'unknown';
    return inconsistent(ctx, result, entries, `${reason}; the rollback to ${safety.filename} failed: ${why}`, { id: safety.id, file: safety.file }, finishHistory);
  }

  // 3. touched, nothing to roll back to: keep the units stopped and say so
  return inconsistent(ctx, result, entries, `${reason} after it changed the install (${touched.join(', ')}), and it has no safety backup to roll back to`, outer.target, finishHistory);
}

function inconsistent(
  ctx: TaskContext,
  result: RecoveryResult,
  entries: OperationEntry[],
  why: string,
  target: { id: number | null; file: string } | null,
  finishHistory: (status: 'failed', details: Record<string, unknown>) => void,
): never {
  const command = target ? emergencyCommand(ctx, target) : null;
  const asides = entries.flatMap((e) => e.temp.filter((t) => t.aside).map((t) => t.path));
  const state =
    `State: the install is half-changed and its units are kept stopped` + (asides.length ? `; the previous trees are kept at ${asides.join(', ')}` : '') + '.';
  const message = `${why}. ${state}` + (command ? ` Run: ${command}` : '');
  for (const e of entries) closeOperation(ctx.ledger, e.id, 'inconsistent', message);
  finishHistory('failed', { install_state: state, emergency_command: command });
  result.message = message;
  ctx.progress('recovery.done', 100, message);
  throw new TaskError('install_inconsistent', message, result.interrupted_at ?? 'recovery.start', { ...result, install_state: state, emergency_command: command }, { changed: true });
}

export const recoverTask = defineTask({
  name: 'operation.recover',
  params: RecoverParams,
  run: (ctx, p) => recoverOperations(ctx, p.operation_ids),
});
