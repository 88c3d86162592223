// Task setup.restore: the bare-metal restore (functions/setup/bare-metal.ts), run by `keeper restore --fresh`
// and by the setup wizard's POST /api/setup/restore.
import { isAbsolute } from 'node:path';
import * as v from 'valibot';
import { defineTask } from '../../runtime/task.ts';
import { bareMetalRestore, type BareMetalResult } from './bare-metal.ts';

export const SetupRestoreParams = v.strictObject({
  file: v.pipe(v.string('expected the archive path'), v.check((p) => isAbsolute(p), 'expected an absolute path')),
  /** write-only; redacted from the job row by state/jobs.ts */
  passphrase: v.optional(v.nullable(v.pipe(v.string(), v.maxLength(1024)))),
  origin: v.optional(v.picklist(['fresh', 'uploaded']), 'fresh'),
  /** the backup's DB_NAME / DB_USER may differ from a live .env's */
  accept_db_change: v.optional(v.boolean('expected true or false'), false),
});

export const setupRestoreTask = defineTask({
  name: 'setup.restore',
  params: SetupRestoreParams,
  run(ctx, p): Promise<BareMetalResult> {
    return bareMetalRestore(ctx, { file: p.file, passphrase: p.passphrase ?? null, origin: p.origin, acceptDbChange: p.accept_db_change });
  },
});
