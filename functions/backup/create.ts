// POST /api/phpborg-backup/create {type?: "manual", notes?, force?} → 202 {job_id}; 409 when another
// maintenance operation runs. The work happens in the backup.create task (a helper).
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../../runtime/bindings.ts';
import { jsonBody } from '../../runtime/errors.ts';
import { startJob } from '../jobs/start.ts';

const Body = v.strictObject({
  type: v.optional(v.literal('manual', 'only "manual" backups are created through the API'), 'manual'),
  notes: v.optional(v.nullable(v.pipe(v.string('expected a string'), v.maxLength(1000, 'expected at most 1000 characters'))), null),
  force: v.optional(v.boolean('expected true or false'), false),
});

export async function createBackupHandler(c: Context<AppEnv>): Promise<Response> {
  const body = await jsonBody(c, Body);
  return startJob(c, 'backup.create', body);
}
