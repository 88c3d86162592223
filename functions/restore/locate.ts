// Which archive a verify / preview / restore is about: a catalog id or a file path, with what the
// catalog and the sidecar say it should be (size, SHA-256, MAC, key check), and its passphrase
// (given, else the stored one).
import { isAbsolute, resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import * as v from 'valibot';
import type { KeeperConfig } from '../../runtime/config.ts';
import { TaskError } from '../../runtime/task.ts';
import type { Ledger } from '../../state/ledger.ts';
import { getBackup, getBackupByFilename, type BackupRow } from '../../state/catalog.ts';
import { getSettings } from '../../state/settings.ts';
import { isEncrypted, readSidecar, type Expected } from '../../archive/index.ts';
import { errorMessage } from '../../runtime/error-message.ts';

/** Task parameters naming an archive: exactly one of backup_id and file. */
export const ArchiveRefEntries = {
  backup_id: v.optional(v.pipe(v.number('expected a backup id'), v.integer(), v.minValue(1))),
  file: v.optional(v.pipe(v.string(), v.check((p) => isAbsolute(p), 'expected an absolute path'))),
  /** write-only; redacted from the job row by state/jobs.ts */
  passphrase: v.optional(v.nullable(v.pipe(v.string(), v.maxLength(1024)))),
};
export const hasOneRef = (p: { backup_id?: number; file?: string }) => (p.backup_id === undefined) !== (p.file === undefined);
export const ONE_REF = 'give exactly one of backup_id and file';

export interface Located {
  file: string;
  backup: BackupRow | null;
  expected: Expected;
  encrypted: boolean;
  passphrase: string | null;
}

/** Finds the archive; TaskError not_found / not_ready / passphrase_required with a clear message. */
export async function locateArchive(
  config: KeeperConfig,
  ledger: Ledger,
  ref: { backup_id?: number; file?: string; passphrase?: string | null },
): Promise<Located> {
  let backup: BackupRow | null = null;
  let file: string;
  if (ref.backup_id !== undefined) {
    backup = getBackup(ledger, ref.backup_id);
    if (!backup) throw new TaskError('not_found', `no backup with id ${ref.backup_id}: see \`keeper backup list\``);
    if (backup.status !== 'succeeded') throw new TaskError('not_ready', `backup ${backup.id} is ${backup.status}, not a complete archive`);
    file = backup.filepath;
  } else {
    file = resolve(ref.file!);
    backup = getBackupByFilename(ledger, file.split('/').pop()!);
    if (backup && resolve(backup.filepath) !== file) backup = null;
  }
  try {
    if (!(await stat(file)).isFile()) throw new Error('not a regular file');
  } catch (e) {
    throw new TaskError('file_missing', `the archive ${file} cannot be read: ${errorMessage(e)}`);
  }
  const sidecar = await readSidecar(file).catch(() => null);
  const expected: Expected = {
    sha256: backup?.hash_sha256 ?? sidecar?.sha256 ?? null,
    size_bytes: backup?.size_bytes ?? sidecar?.size_bytes ?? null,
    mac: backup?.mac ?? sidecar?.mac ?? null,
    key_check: sidecar?.key_check ?? null,
  };
  const encrypted = await isEncrypted(file);
  let passphrase = ref.passphrase ?? null;
  if (encrypted && !passphrase) passphrase = getSettings(ledger, config.paths.storage).backup_encryption_passphrase;
  if (encrypted && !passphrase) {
    throw new TaskError('passphrase_required', `${file.split('/').pop()} is encrypted and no passphrase is stored: give the passphrase (--passphrase-file F, or "passphrase" in the request body)`);
  }
  return { file, backup, expected, encrypted, passphrase: encrypted ? passphrase : null };
}
