// POST /api/phpborg-backup/:id/verify {passphrase?} → 202 {job_id}: the backup.verify task checks the
// archive and changes nothing. Without a passphrase the stored one is used for encrypted archives.
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../../runtime/bindings.ts';
import { jsonBody } from '../../runtime/errors.ts';
import { startJob } from '../jobs/start.ts';
import { catalogedId } from '../restore/handlers.ts';

const Body = v.strictObject({
  passphrase: v.optional(v.nullable(v.pipe(v.string('expected a string'), v.maxLength(1024)))),
});

export async function verifyBackupHandler(c: Context<AppEnv>): Promise<Response> {
  const backup_id = catalogedId(c);
  const body = await jsonBody(c, Body);
  return startJob(c, 'backup.verify', { backup_id, ...(body.passphrase ? { passphrase: body.passphrase } : {}) });
}
