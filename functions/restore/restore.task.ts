// Task backup.restore: the whole install from an archive (functions/restore/apply.ts does the work).
// Ends succeeded (restored), rolled_back (failed, install back to the safety backup) or failed (the
// rollback failed too: the error says the install's state and the emergency-restore command).
import * as v from 'valibot';
import { operationOutcome } from '../../runtime/operation/index.ts';
import { defineTask, TaskError, type TaskOutcome } from '../../runtime/task.ts';
import { getSettings } from '../../state/settings.ts';
import { ArchiveRefEntries, hasOneRef, locateArchive, ONE_REF } from './locate.ts';
import { restoreInstall, type RestoreResult } from './apply.ts';

export const BackupRestoreParams = v.pipe(
  v.strictObject({
    ...ArchiveRefEntries,
    /** go on when phpBorg jobs still run after the drain timeout (never kills them) */
    force: v.optional(v.boolean('expected true or false'), false),
    /** no safety backup first: only together with force */
    skip_safety_backup: v.optional(v.boolean('expected true or false'), false),
    /** the archive's .env may name another DB_NAME / DB_USER than the live one */
    accept_db_change: v.optional(v.boolean('expected true or false'), false),
  }),
  v.check((p) => hasOneRef(p), ONE_REF),
  v.check((p) => !p.skip_safety_backup || p.force, 'skip_safety_backup needs force: true (the safety backup is what a failed restore rolls back to)'),
);

export const backupRestoreTask = defineTask({
  name: 'backup.restore',
  params: BackupRestoreParams,
  async run(ctx, p): Promise<RestoreResult | TaskOutcome<RestoreResult>> {
    const loc = await locateArchive(ctx.config, ctx.ledger, p).catch((e: unknown) => {
      throw e instanceof TaskError ? new TaskError(e.code, e.message, 'restore.verify', undefined, { changed: false, cause: e }) : e;
    });
    const r = await restoreInstall(ctx, {
      file: loc.file,
      passphrase: loc.passphrase,
      expected: loc.expected,
      backupId: loc.backup?.id ?? null,
      safetyMode: p.skip_safety_backup ? 'skip' : 'create',
      safetyType: 'pre_restore',
      force: p.force,
      acceptDbChange: p.accept_db_change,
      storageDir: getSettings(ctx.ledger, ctx.config.paths.storage).backup_storage_path,
    });
    return operationOutcome(r, 'restore_failed');
  },
});
