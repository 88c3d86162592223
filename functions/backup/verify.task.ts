// Task backup.verify: checks an archive end to end and changes nothing — size and SHA-256 against the
// catalog and the sidecar, the HMAC (wrong passphrase vs corrupt file), gzip and tar structure, the §3
// layout, every entry against manifest.json, the metadata schema. Each check is listed ok/error.
import * as v from 'valibot';
import { defineTask, TaskError } from '../../runtime/task.ts';
import { verifyArchive, type VerifyCheck } from '../archive/index.ts';
import { ArchiveRefEntries, hasOneRef, locateArchive, ONE_REF } from '../restore/locate.ts';

export const BackupVerifyParams = v.pipe(v.strictObject(ArchiveRefEntries), v.check((p) => hasOneRef(p), ONE_REF));

export interface VerifyTaskResult {
  ok: true;
  backup_id: number | null;
  file: string;
  encrypted: boolean;
  checks: VerifyCheck[];
  metadata: { backup_date: string; backup_type: string; phpborg_version: string | null; git_commit: string | null } | null;
}

export const backupVerifyTask = defineTask({
  name: 'backup.verify',
  maintenance: false,
  params: BackupVerifyParams,
  async run(ctx, p): Promise<VerifyTaskResult> {
    const loc = await locateArchive(ctx.config, ctx.ledger, p).catch((e) => {
      throw e instanceof TaskError ? new TaskError(e.code, e.message, 'verify.locate') : e;
    });
    const name = loc.file.split('/').pop()!;
    ctx.progress('verify.archive', 5, `Verifying ${name}`, { file: name });
    const r = await verifyArchive(loc.file, { passphrase: loc.passphrase, expected: loc.expected, signal: ctx.signal });
    for (const c of r.checks) ctx.progress(`verify.${c.name}`, 90, `${c.name}: ${c.ok ? 'ok' : c.error ?? 'failed'}`, { ok: c.ok });
    if (!r.ok) {
      const bad = r.checks.filter((c) => !c.ok);
      // the archive core's code (wrong_passphrase, corrupt, unsafe_entry, …): a UI can ask again for a passphrase
      const code = r.code ?? 'verify_failed';
      throw new TaskError(code, `${name} failed verification: ${bad.map((c) => `${c.name}: ${c.error ?? 'failed'}`).join('; ')}`, 'verify.archive', {
        checks: r.checks,
      });
    }
    const md = r.metadata;
    ctx.progress('verify.done', 100, `${name}: all ${r.checks.length} checks passed`);
    return {
      ok: true,
      backup_id: loc.backup?.id ?? null,
      file: loc.file,
      encrypted: loc.encrypted,
      checks: r.checks,
      metadata: md ? { backup_date: md.backup_date, backup_type: md.backup_type, phpborg_version: md.phpborg_version, git_commit: md.git_commit } : null,
    };
  },
});
