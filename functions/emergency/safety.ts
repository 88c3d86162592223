// The emergency restore's safety copy (type pre_emergency_restore): what exists of the install, taken
// when the backup core cannot run (it needs a live .env and a database that answers).
//
// Decision: the copy is always a normal format-v1 archive, written by writeBackup (functions/backup/
// write.ts) like every backup, so every reader (verify, preview, restore, emergency-restore) handles
// it. Unlike createBackup: no drain and no maintenance window (the units may be dead), no retention,
// the ledger may be unusable (null), and the caller picks the passphrase and the storage dir. The files (code dir, .env, sudoers,
// units, /etc/phpborg, SSH) are always in it. database.sql is a real mariadb-dump when the database
// answers; otherwise it is a short SQL comment saying the database was NOT dumped and why, and
// metadata.notes says so too ("database NOT included: …", table_row_counts {}). Restoring such a copy
// recreates an empty database, which is exactly the state it was taken in.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { removeTree } from '../../runtime/remove-tree.ts';
import { join } from 'node:path';
import type { KeeperConfig } from '../../runtime/config.ts';
import { readEnv, type PhpborgEnv } from '../../runtime/install.ts';
import { dumpDatabase, readSettingsTable, serverVersion, tableStats, type PhpborgSettingRow } from '../../runtime/mariadb.ts';
import { probeDatabase } from '../../runtime/probes.ts';
import { keeperTempDir } from '../../runtime/temp.ts';
import { collectVersions } from '../../runtime/versions.ts';
import type { Actor } from '../../runtime/task.ts';
import type { Ledger } from '../../state/ledger.ts';
import { sizeHuman } from '../../state/catalog.ts';
import { ENTRY, plannedSize, type Source } from '../../archive/index.ts';
import { installSources } from '../backup/sources.ts';
import { notDumped, splitStats, writeBackup, type DatabasePart } from '../backup/write.ts';
import { ensureOwnStorageDir } from '../../runtime/storage-path.ts';
import { autoNote } from '../backup/auto-notes.ts';

export interface SafetyCopyOptions {
  config: KeeperConfig;
  /** where the copy goes (0700 dir, created when missing) */
  dir: string;
  /** the catalog to register it in; null when the ledger is unusable (the sidecars still describe it) */
  ledger: Ledger | null;
  /** the operation journal entry that owns its temporaries */
  journal: { ledger: Ledger; id: number } | null;
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
  // only a directory keeper creates is given its mode; a shared one is never touched
  await ensureOwnStorageDir(config, o.dir);
  let live: PhpborgEnv | null = null;
  try {
    live = readEnv(config);
  } catch (e) {
    log(`no usable live .env (${(e as Error).message})`);
  }
  const reach = await reachableEnv(live, o.backupEnv);
  const db = 'env' in reach ? reach.env : null;
  const unreachable = 'why' in reach ? reach.why : '';
  const work = await keeperTempDir('emergency', config.paths.state);
  try {
    // the files: same selection as every backup (functions/backup/sources.ts)
    const rows: PhpborgSettingRow[] = db ? await readSettingsTable(db).catch(() => []) : [];
    const src = await installSources(config, rows, live ?? o.backupEnv ?? ({ APP_SECRET: 'none' } as PhpborgEnv));
    src.warnings.forEach(log);
    let code: Source[] = src.code;
    if (!existsSync(config.paths.code)) {
      // the code dir is gone: an empty code/ keeps the archive's layout
      const empty = join(work, 'code');
      await mkdir(empty);
      code = [{ kind: 'dir', path: ENTRY.code, from: empty }];
      log(`no code dir at ${config.paths.code}: the copy holds an empty code/`);
    }
    const [plan, versions] = await Promise.all([
      plannedSize([...src.head, ...code]),
      collectVersions(config.paths.code, async () => {
        if (!db) throw new Error('database down');
        return serverVersion(db);
      }),
    ]);

    // the database when it answers; otherwise database.sql says why it is not there (no window: units may be dead)
    const database = async (file: string): Promise<DatabasePart> => {
      if (!db) return notDumped(file, unreachable);
      try {
        const [d, stats] = await Promise.all([dumpDatabase(db, file, { signal: o.signal }), tableStats(db)]);
        log(`database ${db.DB_NAME} dumped (${sizeHuman(d.size_bytes)})`);
        return { size_bytes: d.size_bytes, sha256: d.sha256, ...splitStats(stats), maintenance_window_ms: 0 };
      } catch (e) {
        return notDumped(file, `the dump failed: ${(e as Error).message}`);
      }
    };
    const w = await writeBackup({
      type: 'pre_emergency_restore',
      dir: o.dir,
      at: o.now,
      ledger: o.ledger,
      journal: o.journal,
      actor: o.actor,
      notes: autoNote('emergency_safety'),
      passphrase: o.passphrase,
      versions,
      head: src.head,
      code,
      plan,
      signal: o.signal,
      onWarning: log,
      database: async (named) => {
        const part = await database(named.databaseFile);
        if (part.skipped !== undefined) log(`database NOT included: ${part.skipped}`);
        return part;
      },
    });
    return {
      id: w.id,
      file: w.file,
      filename: w.filename,
      sha256: w.sha256,
      mac: w.mac,
      size_bytes: w.size_bytes,
      encrypted: w.encrypted,
      database_skipped: w.database.skipped ?? null,
    };
  } finally {
    await removeTree(work).catch(() => {});
  }
}
