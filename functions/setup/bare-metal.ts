// Bare-metal restore: a machine with no phpBorg installation (empty paths; MariaDB running without the
// database or its user). The restore core (functions/restore/apply.ts) does the work with no safety
// backup (there is nothing to keep) and no drain/stop (nothing runs); its database step first creates
// the database and the user from the BACKUP's .env as the MariaDB admin (root over its socket). Code,
// .env, sudoers, units, /etc/phpborg and SSH keys land at the configured paths with config.owner and
// their modes, the units start, health is checked, and the archive is registered in the (new) ledger.
// Used by `keeper restore --fresh FILE` and the setup wizard, both through the setup.restore task.
import { copyFile, chmod, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ensureDatabaseAndUser } from '../../runtime/mariadb-admin.ts';
import { ensureOwnStorageDir } from '../../runtime/storage-path.ts';
import { errorMessage } from '../../runtime/error-message.ts';
import { operationError } from '../../runtime/operation/index.ts';
import { TaskError, type TaskContext } from '../../runtime/task.ts';
import { audit } from '../../state/audit.ts';
import { getBackup, type BackupRow } from '../../state/catalog.ts';
import { archiveFileName, checkIntegrity, isEncrypted, readSidecar, writeSidecars, type ArchiveMetadata, type Expected } from '../../archive/index.ts';
import { restoreInstall, type RestoreResult } from '../restore/apply.ts';
import { backupEnvOf, describeArchiveFailure } from '../emergency/run.ts';
import { fromSidecar, registerFound } from '../emergency/catalog.ts';
import { keyCheckOf } from '../backup/finalize.ts';
import { installState } from './state.ts';

export interface BareMetalOptions {
  /** absolute path of the archive */
  file: string;
  passphrase?: string | null;
  /** catalog origin of the registered archive: `fresh` (CLI) or `uploaded` (setup wizard) */
  origin?: string;
  /** a live .env may exist (its database gone): the backup's may name another DB_NAME / DB_USER */
  acceptDbChange?: boolean;
}

export type BareMetalResult = RestoreResult & { backup_row: BackupRow | null };

/**
 * Puts the archive into the storage dir (copied when it is elsewhere, 0600, with its sidecars) and
 * registers it in the ledger's catalog. Never fails the restore: a problem is logged.
 */
async function register(ctx: TaskContext, file: string, metadata: ArchiveMetadata, passphrase: string | null, origin: string): Promise<BackupRow | null> {
  try {
    const storage = await ensureOwnStorageDir(ctx.config, ctx.config.paths.storage);
    // the canonical name, whatever the file was called on the way here
    const name = archiveFileName(new Date(metadata.backup_date), metadata.backup_type);
    let target = file;
    if (resolve(dirname(file)) !== resolve(storage) || basename(file) !== name) {
      target = join(storage, name);
      if (!existsSync(target)) {
        await copyFile(file, target);
        await chmod(target, 0o600);
      }
    }
    let side = await readSidecar(target).catch(() => null);
    if (!side || side.file !== name) {
      const integrity = await checkIntegrity(target, { passphrase });
      if (integrity.verdict !== 'ok' || !integrity.sha256) throw new Error(integrity.message);
      await writeSidecars(target, {
        metadata,
        sha256: integrity.sha256,
        size_bytes: integrity.size_bytes,
        mac: integrity.mac,
        key_check: passphrase ? await keyCheckOf(target, passphrase) : null,
      });
      side = await readSidecar(target);
    }
    if (!side) throw new Error('no sidecar could be written');
    const found = fromSidecar(target, side);
    const id = registerFound(ctx.ledger, [found], { origin, actor: ctx.actor }).get(found.filename);
    return id !== undefined ? getBackup(ctx.ledger, id) : null;
  } catch (e) {
    ctx.log('warn', `the archive was restored but could not be registered in the catalog: ${errorMessage(e)}`);
    return null;
  }
}

export async function bareMetalRestore(ctx: TaskContext, o: BareMetalOptions): Promise<BareMetalResult> {
  const { config } = ctx;
  const file = resolve(o.file);
  const name = basename(file);
  ctx.progress('setup.check', 0, `Checking ${name} and this machine`);
  try {
    if (!(await stat(file)).isFile()) throw new Error('not a regular file');
  } catch (e) {
    throw new TaskError('file_missing', `the archive ${file} cannot be read: ${errorMessage(e)}`, 'setup.check', undefined, { changed: false, cause: e });
  }
  const state = await installState(config);
  if (state.initialized) {
    throw new TaskError(
      'already_initialized',
      `phpBorg is already installed here (${config.paths.code} has a .env and its database answers): use \`keeper restore\` or scripts/emergency-restore`,
      'setup.check',
      undefined,
      { changed: false },
    );
  }
  const side = await readSidecar(file).catch(() => null);
  const expected: Expected = side ? { sha256: side.sha256, size_bytes: side.size_bytes, mac: side.mac, key_check: side.key_check } : {};
  const encrypted = await isEncrypted(file);
  const passphrase = encrypted ? o.passphrase ?? null : null;
  if (encrypted && !passphrase) {
    throw new TaskError('passphrase_required', `${name} is encrypted: give its passphrase (--passphrase-file F, or the "passphrase" field)`, 'setup.check', undefined, { changed: false });
  }
  ctx.progress('setup.check', 2, `Reading the backup's .env (${state.reason ?? 'not initialized'})`);
  let backupEnv;
  let metadata: ArchiveMetadata;
  try {
    const r = await backupEnvOf(file, passphrase, expected);
    backupEnv = r.env;
    metadata = r.head.metadata;
  } catch (e) {
    const f = describeArchiveFailure(e);
    throw new TaskError(f.code, `${name} cannot be restored: ${f.message}`, 'setup.check', undefined, { changed: false, cause: e });
  }

  const r = await restoreInstall(
    ctx,
    {
      file,
      passphrase,
      expected,
      backupId: null,
      // nothing to keep on a bare machine; interrupted, the restore of this archive is finished forward
      safetyMode: 'skip',
      recoverTo: { id: null, file, filename: name },
      env: backupEnv,
      storageDir: config.paths.storage,
      acceptDbChange: o.acceptDbChange,
      nothingRunning: true,
      prepareDatabase: async (env) => {
        const d = await ensureDatabaseAndUser(config, env, (m) => ctx.log('info', m));
        ctx.log('info', `database ${env.DB_NAME}${d.database_created ? ' created' : ''}${d.user_created ? `, user ${env.DB_USER} created` : ''}`);
      },
    },
    { kind: 'bare_metal', percent: [3, 97] },
  );

  ctx.progress('setup.register', 98, 'Registering the archive in the catalog');
  const row = await register(ctx, file, metadata, passphrase, o.origin ?? 'fresh');
  try {
    audit(ctx.ledger, {
      actor: ctx.actor,
      action: 'setup.restore',
      target: name,
      outcome: r.outcome,
      details: { backup_id: row?.id ?? null, message: r.message, failed_step: r.failed_step ?? null },
    });
  } catch {
    /* the job row records the outcome anyway */
  }
  if (r.outcome !== 'succeeded') throw operationError(r, 'restore_failed');
  ctx.progress('setup.done', 100, `phpBorg restored from ${name}`);
  return { ...r, backup_row: row };
}
