// Task backup.verify: checks an archive end to end and changes nothing — size and SHA-256 against the
// catalog and the sidecar, the HMAC (wrong passphrase vs corrupt file), gzip and tar structure, the
// layout (docs/archive-format.md), every entry against manifest.json, the metadata schema. Each check is listed ok/error.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import * as v from 'valibot';
import { defineTask, TaskError } from '../../runtime/task.ts';
import type { BackupRow } from '../../state/catalog.ts';
import { readSidecar, sidecarPaths, verifyArchive, type VerifyCheck } from '../../archive/index.ts';
import { ArchiveRefEntries, hasOneRef, locateArchive, ONE_REF } from '../restore/locate.ts';
import { errorMessage } from '../../runtime/error-message.ts';

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
  params: BackupVerifyParams,
  async run(ctx, p): Promise<VerifyTaskResult> {
    const loc = await locateArchive(ctx.config, ctx.ledger, p).catch((e) => {
      throw e instanceof TaskError ? new TaskError(e.code, e.message, 'verify.locate') : e;
    });
    const name = loc.file.split('/').pop()!;
    ctx.progress('verify.archive', 5, `Verifying ${name}`, { file: name });
    const r = await verifyArchive(loc.file, { passphrase: loc.passphrase, expected: loc.expected, signal: ctx.signal });
    // checks that could not run are reported together, once, after the failure that decided it
    for (const c of r.checks) if (!c.not_checked) ctx.progress(`verify.${c.name}`, 90, `${c.name}: ${c.ok ? 'ok' : c.error ?? 'failed'}`, { ok: c.ok });
    if (!r.ok) {
      ctx.progress('verify.not_checked', 95, notCheckedLine(r.checks), { checks: r.checks.filter((c) => c.not_checked).map((c) => c.name).join(', ') });
      // the archive core's code (wrong_passphrase, corrupt, unsafe_entry, …): a UI can ask again for a passphrase
      const code = r.code ?? 'verify_failed';
      throw new TaskError(code, `${name} failed verification: ${verifyFailure(r.checks)}`, 'verify.archive', {
        checks: r.checks,
      });
    }
    // the archive matched the catalog; its sidecars must say the same, or a machine whose ledger is
    // gone (emergency restore) would refuse a good archive or trust a wrong one
    if (loc.backup) {
      const problems = await sidecarProblems(loc.file, loc.backup);
      if (problems.length) {
        throw new TaskError(
          'sidecar_mismatch',
          `${name} matches the catalog, but its sidecars do not: ${problems.join('; ')}. If nobody edited them, treat the storage dir as tampered with; ` +
            'to rewrite them, download the backup, delete it and upload it again',
          'verify.sidecar',
          { checks: r.checks, sidecar: problems },
        );
      }
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

/** The decisive failure(s) in one sentence, then what could not be checked because of it. */
export function verifyFailure(checks: VerifyCheck[]): string {
  const failed = checks.filter((c) => !c.ok && !c.not_checked).map((c) => `${c.name}: ${c.error ?? 'failed'}`);
  const rest = notCheckedLine(checks);
  return [failed.join('; '), rest].filter(Boolean).join('; ');
}

function notCheckedLine(checks: VerifyCheck[]): string {
  const skipped = checks.filter((c) => c.not_checked);
  if (!skipped.length) return '';
  // one reason for all of them: the first failure stopped everything after it
  return `${skipped.map((c) => c.name).join(', ')} ${skipped[0]!.error}`;
}

/** What the .json and .sha256 sidecars say that disagrees with the catalog row (empty: they agree). */
export async function sidecarProblems(file: string, row: Pick<BackupRow, 'hash_sha256' | 'size_bytes' | 'mac'>): Promise<string[]> {
  const paths = sidecarPaths(file);
  const out: string[] = [];
  try {
    const side = await readSidecar(file);
    if (!side) out.push(`${basename(paths.json)} is missing`);
    else {
      if (side.file !== basename(file)) out.push(`${basename(paths.json)} names ${side.file}`);
      if (side.sha256 !== row.hash_sha256) out.push(`${basename(paths.json)} has SHA-256 ${side.sha256}, the catalog ${row.hash_sha256}`);
      if (side.size_bytes !== row.size_bytes) out.push(`${basename(paths.json)} has ${side.size_bytes} bytes, the catalog ${row.size_bytes}`);
      if ((side.mac ?? null) !== (row.mac ?? null)) out.push(`${basename(paths.json)} has another MAC than the catalog`);
    }
  } catch (e) {
    out.push(errorMessage(e));
  }
  let text: string | null = null;
  try {
    text = await readFile(paths.sha256, 'utf8');
  } catch {
    out.push(`${basename(paths.sha256)} is missing`);
  }
  if (text !== null) {
    // sha256sum -c format: "<hex>  <name>" (binary mode: "<hex> *<name>")
    const m = /^([0-9a-f]{64}) [ *](.+)\n?$/.exec(text);
    if (!m) out.push(`${basename(paths.sha256)} is not in sha256sum format`);
    else if (m[1] !== row.hash_sha256 || m[2] !== basename(file)) out.push(`${basename(paths.sha256)} says ${m[1]} ${m[2]}, the catalog ${row.hash_sha256} ${basename(file)}`);
  }
  return out;
}
