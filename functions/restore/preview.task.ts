// Task backup.restore_preview: buildPreview through the helper, which can read the archive, the root-only
// config files and the SSH dir. Reads only; no lock.
import * as v from 'valibot';
import { defineTask, TaskError, type TaskContext } from '../../runtime/task.ts';
import { getSettings } from '../../state/settings.ts';
import { isArchiveError } from '../../archive/index.ts';
import { ArchiveRefEntries, hasOneRef, locateArchive, ONE_REF, type Located } from './locate.ts';
import { buildPreview, type RestorePreview } from './preview.ts';

export const RestorePreviewParams = v.pipe(v.strictObject(ArchiveRefEntries), v.check((p) => hasOneRef(p), ONE_REF));

export const restorePreviewTask = defineTask({
  name: 'backup.restore_preview',
  params: RestorePreviewParams,
  async run(ctx, p): Promise<RestorePreview> {
    return previewLocated(ctx, await locateArchive(ctx.config, ctx.ledger, p), 'restore.preview');
  },
});

/** The preview of a located archive, reported as task step `step`; the archive core's refusals become the task's error. */
export async function previewLocated(ctx: TaskContext, loc: Located, step: string): Promise<RestorePreview> {
  ctx.progress(step, 10, `Reading the head of ${loc.file.split('/').pop()}`);
  try {
    const preview = await buildPreview({
      config: ctx.config,
      ledger: ctx.ledger,
      file: loc.file,
      passphrase: loc.passphrase,
      backup: loc.backup,
      expected: loc.expected,
      storageDir: getSettings(ctx.ledger, ctx.config.paths.storage).backup_storage_path,
    });
    ctx.progress(step, 100, 'Preview ready');
    return preview;
  } catch (e) {
    if (isArchiveError(e)) throw new TaskError(e.code, e.message, step);
    throw e;
  }
}
