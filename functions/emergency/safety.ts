// The emergency restore's safety copy (type pre_emergency_restore): what exists of the install, taken
// when the backup core cannot run (it needs a live .env and a database that answers).
//
// Decision: the copy is always a normal format-v1 archive written by the archive core, so every
// reader (verify, preview, restore, emergency-restore) handles it. The files (code dir, .env, sudoers,
// units, /etc/phpborg, SSH) are always in it. database.sql is a real mariadb-dump when the database
// answers; otherwise it is a short SQL comment saying the database was NOT dumped and why, and
// metadata.notes says so too ("database NOT included: …", table_row_counts {}). Restoring such a copy
// recreates an empty database, which is exactly the state it was taken in.
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeeperConfig } from '../../runtime/config.ts';
import { readEnv, type PhpborgEnv } from '../../runtime/install.ts';
import { dumpDatabase, readSettingsTable, serverVersion, tableRowCounts, type PhpborgSettingRow } from '../../runtime/mariadb.ts';
import { probeDatabase } from '../../runtime/probes.ts';
import { collectVersions } from '../../runtime/versions.ts';
import type { Actor } from '../../runtime/task.ts';
import type { Ledger } from '../../state/ledger.ts';
import { getBackupByFilename, insertBackup, markFailed, sizeHuman } from '../../state/catalog.ts';
import {
  ENCRYPTION_ALGO,
  archiveBaseName,
  archiveFileName,
  ENTRY,
  FORMAT_VERSION,
  GENERATOR,
  partialName,
  plannedSize,
  writeArchive,
  type ArchiveMetadata,
  type Source,
} from '../../archive/index.ts';
import { finalizeArchive } from '../backup/finalize.ts';
import { installSources } from '../backup/sources.ts';
import { errorMessage } from '../../runtime/error-message.ts';

export interface SafetyCopyOptions {
  config: KeeperConfig;
  /** where the copy goes (0700 dir, created when missing) */
  dir: string;
  /** the catalog to register it in; null when the ledger is unusable (the sidecars still describe it) */
  ledger: Ledger | null;
  /** the restored archive's .env: a second chance to reach the current database when the live .env is gone */
  backupEnv: PhpborgEnv | null;
  passphrase: string | null;
  actor: Actor;
  now: Date;
  log?: (message: string) => void;
  signal?: AbortSignal;
}

export interface SafetyCopy {
  id: number | null;
  file: string;
  filename: string;
  sha256: string;
  mac: string | null;
  size_bytes: number;
  encrypted: boolean;
  /** null when the database is in the copy; otherwise why it is not */
  database_skipped: string | null;
}

/** A free archive name: the date moves on by a second while the name is taken (catalog or disk). */
function freeDate(dir: string, ledger: Ledger | null, date: Date): Date {
  let d = new Date(Math.floor(date.getTime() / 1000) * 1000);
  for (let i = 0; i < 120; i++) {
    const name = archiveFileName(d, 'pre_emergency_restore');
    if (!existsSync(join(dir, name)) && !(ledger && getBackupByFilename(ledger, name))) return d;
    d = new Date(d.getTime() + 1000);
  }
  throw new Error(`no free archive name in ${dir}`);
}

/** Which credentials open the current database: the live .env's, else the backup's; why not when neither. */
async function reachableEnv(live: PhpborgEnv | null, backup: PhpborgEnv | null): Promise<{ env: PhpborgEnv } | { why: string }> {
  const tried: string[] = [];
  for (const [label, env] of [['live .env', live], ["backup's .env", backup]] as const) {
    if (!env) continue;
    const p = await probeDatabase(env);
    if (p.ok) return { env };
    tried.push(`${label}: ${p.error}`);
  }
  return { why: tried.length ? `the database does not answer (${tried.join('; ')})` : 'no .env to reach the database' };
}

export async function takeSafetyCopy(o: SafetyCopyOptions): Promise<SafetyCopy> {
  const log = o.log ?? (() => {});
  const { config } = o;
  await mkdir(o.dir, { recursive: true, mode: 0o700 });
  await chmod(o.dir, 0o700);
  let live: PhpborgEnv | null = null;
  try {
    live = readEnv(config);
  } catch (e) {
    log(`no usable live .env (${errorMessage(e)})`);
  }
  const date = freeDate(o.dir, o.ledger, o.now);
  const fileName = archiveFileName(date, 'pre_emergency_restore');
  const root = archiveBaseName(date);
  const work = await mkdtemp(join(tmpdir(), 'keeper-emergency-'));
  const dumpFile = join(o.dir, partialName(`${root}-pre_emergency_restore.database.sql`));
  let id: number | null = null;
  try {
    // the database, when it answers
    const reach = await reachableEnv(live, o.backupEnv);
    let skipped: string | null = null;
    let rows: PhpborgSettingRow[] = [];
    let counts: Record<string, number> = {};
    let dump: { size_bytes: number; sha256: string };
    if ('env' in reach) {
      try {
        const [d, c] = await Promise.all([dumpDatabase(reach.env, dumpFile, { signal: o.signal }), tableRowCounts(reach.env)]);
        dump = d;
        counts = c;
        rows = await readSettingsTable(reach.env).catch(() => []);
        log(`database ${reach.env.DB_NAME} dumped (${sizeHuman(d.size_bytes)})`);
      } catch (e) {
        skipped = `the dump failed: ${errorMessage(e)}`;
      }
    } else skipped = reach.why;
    if (skipped !== null) {
      const text = `-- phpborg-keeper emergency safety copy: the database was NOT dumped.\n-- reason: ${skipped.replace(/\n/g, ' ')}\n`;
      await rm(dumpFile, { force: true });
      await writeFile(dumpFile, text, { mode: 0o600, flag: 'wx' });
      dump = { size_bytes: Buffer.byteLength(text), sha256: createHash('sha256').update(text).digest('hex') };
      log(`database NOT included: ${skipped}`);
    }

    // the files: same selection as every backup (functions/backup/sources.ts)
    const hashEnv = live ?? o.backupEnv;
    const src = await installSources(config, rows, hashEnv ?? ({ APP_SECRET: 'none' } as PhpborgEnv));
    src.warnings.forEach(log);
    let code: Source[] = src.code;
    if (!existsSync(config.paths.code)) {
      // the code dir is gone: an empty code/ keeps the archive's layout
      const empty = join(work, 'code');
      await mkdir(empty);
      code = [{ kind: 'dir', path: ENTRY.code, from: empty }];
      log(`no code dir at ${config.paths.code}: the copy holds an empty code/`);
    }
    const plan = await plannedSize([...src.head, ...code]);
    const versions = await collectVersions(config.paths.code, async () => {
      if (!('env' in reach)) throw new Error('database down');
      return serverVersion(reach.env);
    });
    const note = skipped === null ? 'emergency safety copy' : `emergency safety copy; database NOT included: ${skipped}`;
    const metadata: ArchiveMetadata = {
      generator: GENERATOR,
      format_version: FORMAT_VERSION,
      backup_date: date.toISOString(),
      ...versions,
      encrypted: !!o.passphrase,
      encryption_algo: o.passphrase ? ENCRYPTION_ALGO : null,
      compression: 'gzip',
      total_size_bytes: plan.total_size_bytes + dump!.size_bytes,
      files_count: plan.files_count + 1,
      database_size_bytes: dump!.size_bytes,
      database_sha256: dump!.sha256,
      table_row_counts: counts,
      created_by_user_id: o.actor.id,
      created_by: o.actor.name,
      backup_type: 'pre_emergency_restore',
      notes: note,
      maintenance_window_ms: 0,
    };
    if (o.ledger) {
      id = insertBackup(o.ledger, {
        filename: fileName,
        filepath: join(o.dir, fileName),
        backup_type: 'pre_emergency_restore',
        notes: note,
        encrypted: !!o.passphrase,
        created_at: date.toISOString(),
        created_by: o.actor.id,
        created_by_name: o.actor.name,
      });
    }
    const written = await writeArchive({
      dir: o.dir,
      fileName,
      root,
      passphrase: o.passphrase,
      signal: o.signal,
      onWarning: log,
      plannedBytes: metadata.total_size_bytes,
      sources: [
        { kind: 'buffer', path: ENTRY.metadata, data: Buffer.from(JSON.stringify(metadata, null, 2) + '\n'), mode: 0o600 },
        ...src.head,
        { kind: 'file', path: ENTRY.database, from: dumpFile },
        ...code,
      ],
    });
    await finalizeArchive(written, metadata, date, o.ledger && id !== null ? { ledger: o.ledger, id } : null);
    return {
      id,
      file: written.file,
      filename: fileName,
      sha256: written.sha256,
      mac: written.mac,
      size_bytes: written.size_bytes,
      encrypted: !!o.passphrase,
      database_skipped: skipped,
    };
  } catch (e) {
    if (o.ledger && id !== null) markFailed(o.ledger, id);
    await rm(join(o.dir, partialName(fileName)), { force: true }).catch(() => {});
    throw e;
  } finally {
    await rm(dumpFile, { force: true }).catch(() => {});
    await rm(work, { recursive: true, force: true }).catch(() => {});
  }
}
