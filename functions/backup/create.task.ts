// Task backup.create: one backup of the whole installation (functions/backup/core.ts does the work).
import * as v from 'valibot';
import { defineTask } from '../../runtime/task.ts';
import { createBackup, type BackupResult } from './core.ts';

export { createBackup, type BackupOutcome, type BackupResult, type CreateBackupOptions } from './core.ts';

export const BackupCreateParams = v.strictObject({
  /** manual from the API and the CLI, scheduled from the weekly schedule */
  type: v.optional(v.picklist(['manual', 'scheduled'], 'expected "manual" or "scheduled"'), 'manual'),
  notes: v.optional(v.nullable(v.pipe(v.string('expected a string'), v.maxLength(1000, 'expected at most 1000 characters'))), null),
  force: v.optional(v.boolean('expected true or false'), false),
});

export const backupCreateTask = defineTask({
  name: 'backup.create',
  params: BackupCreateParams,
  async run(ctx, p): Promise<BackupResult> {
    // a fresh object of the enumerable fields only: the passphrase never reaches the job result
    const { ...result } = await createBackup(ctx, { type: p.type, notes: p.notes, force: p.force, offsite: true });
    return result;
  },
});
