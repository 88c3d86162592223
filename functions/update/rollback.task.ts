// Task update.rollback: puts back the install as it was before an update, by restoring that
// update's pre-update backup with the restore plan (verify, safety backup, database, code with vendor
// and dist, configuration, health; a failure is undone back to the safety backup). Recorded in the
// update history as a row of kind "rollback" pointing at the update (parent_id).
// Task update.rollback_preview: the restore preview of that backup, plus the history row.
import * as v from 'valibot';
import * as git from '../../runtime/git.ts';
import { operationOutcome } from '../../runtime/operation/index.ts';
import { defineTask, TaskError, type TaskContext, type TaskOutcome } from '../../runtime/task.ts';
import { getSettings } from '../../state/settings.ts';
import { finishUpdate, getUpdate, insertUpdate, type UpdateRow } from '../../state/updates.ts';
import { restoreInstall, type RestoreResult } from '../restore/apply.ts';
import { locateArchive, type Located } from '../restore/locate.ts';
import type { RestorePreview } from '../restore/preview.ts';
import { previewLocated } from '../restore/preview.task.ts';

const HistoryId = v.pipe(v.number('expected an update history id'), v.integer(), v.minValue(1));

export const RollbackParams = v.strictObject({
  history_id: HistoryId,
  /** go on when phpBorg jobs still run after the drain timeout (never kills them) */
  force: v.optional(v.boolean('expected true or false'), false),
});

export const RollbackPreviewParams = v.strictObject({ history_id: HistoryId });

/** The update row a rollback is about, and its pre-update archive; TaskError when there is none. */
async function locateUpdate(ctx: Pick<TaskContext, 'config' | 'ledger'>, historyId: number): Promise<{ row: UpdateRow; loc: Located }> {
  const row = getUpdate(ctx.ledger, historyId);
  if (!row) throw new TaskError('not_found', `no update #${historyId} in the history: see \`keeper update history\``);
  if (row.kind !== 'update') throw new TaskError('not_an_update', `history #${historyId} is a ${row.kind}, not an update; roll back the update it belongs to (#${row.parent_id})`);
  if (row.status === 'running') throw new TaskError('update_running', `update #${historyId} is still running: wait for it to finish (it rolls back by itself on failure)`);
  if (row.backup_id === null) {
    throw new TaskError('no_backup', `update #${historyId} has no pre-update backup to roll back to: restore another backup instead (\`keeper backup list\`, \`keeper restore ID\`)`);
  }
  const loc = await locateArchive(ctx.config, ctx.ledger, { backup_id: row.backup_id });
  return { row, loc };
}

export interface RollbackResult extends RestoreResult {
  history_id: number;
  update_id: number;
}

export const rollbackTask = defineTask({
  name: 'update.rollback',
  params: RollbackParams,
  async run(ctx, p): Promise<RollbackResult | TaskOutcome<RollbackResult>> {
    const { row, loc } = await locateUpdate(ctx, p.history_id).catch((e: unknown) => {
      throw e instanceof TaskError ? new TaskError(e.code, e.message, 'update.rollback', e.details, { changed: false, cause: e }) : e;
    });
    const dir = ctx.config.paths.code;
    const [head, version] = await Promise.all([git.headCommit(dir).catch(() => 'unknown'), git.describe(dir)]);
    ctx.progress('update.rollback', 0, `Rolling back update #${row.id} with ${loc.file.split('/').pop()}`, {
      update_id: row.id,
      backup_id: row.backup_id,
    });
    const historyId = insertUpdate(ctx.ledger, {
      kind: 'rollback',
      parent_id: row.id,
      job_id: ctx.jobId,
      from_commit: head,
      from_version: version,
      to_commit: loc.backup?.git_commit ?? row.from_commit,
      to_version: loc.backup?.phpborg_version ?? row.from_version,
      target: `rollback of update #${row.id}`,
      backup_id: row.backup_id,
      actor_id: ctx.actor.id,
      actor_name: ctx.actor.name,
      started_at: ctx.now().toISOString(),
    });
    const r = await restoreInstall(
      ctx,
      {
        file: loc.file,
        passphrase: loc.passphrase,
        expected: loc.expected,
        backupId: row.backup_id,
        safetyMode: 'create',
        safetyType: 'pre_restore',
        force: p.force,
        storageDir: getSettings(ctx.ledger, ctx.config.paths.storage).backup_storage_path,
      },
      { kind: 'rollback' },
    );
    const out: RollbackResult = { ...r, history_id: historyId, update_id: row.id };
    finishUpdate(ctx.ledger, historyId, {
      status: r.outcome === 'succeeded' ? 'succeeded' : r.outcome === 'rolled_back' ? 'rolled_back' : 'failed',
      finished_at: ctx.now().toISOString(),
      ...(r.outcome === 'succeeded' ? { to_version: await git.describe(dir) } : { failed_step: r.failed_step ?? null, error: r.error?.message ?? r.message }),
      details: {
        changed: r.changed,
        restore: { outcome: r.outcome, message: r.message, steps: r.steps },
        ...(r.outcome === 'failed' && r.changed ? { install_state: r.install_state, emergency_command: r.emergency_command } : {}),
      },
    });
    return operationOutcome(out, 'rollback_failed');
  },
});

export interface RollbackPreview {
  update: UpdateRow;
  preview: RestorePreview;
}

export const rollbackPreviewTask = defineTask({
  name: 'update.rollback_preview',
  params: RollbackPreviewParams,
  async run(ctx, p): Promise<RollbackPreview> {
    const { row, loc } = await locateUpdate(ctx, p.history_id);
    // the restore preview's own default safety copy type is pre_restore, as the rollback takes
    return { update: row, preview: await previewLocated(ctx, loc, 'update.rollback_preview') };
  },
});
