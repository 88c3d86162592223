// One backup into the storage dir, the sequence every backup shares (the backup core and the emergency
// safety copy): a free name → its catalog row → database.sql → the archive → sidecars, row succeeded.
// A failure marks the row failed and removes what was half-written. What comes before (checks, drain)
// and how database.sql is produced (a dump inside a maintenance window, or a note that it was not) is
// the caller's.
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TaskError, type Actor } from '../../runtime/task.ts';
import type { Versions } from '../../runtime/versions.ts';
import type { TableStat } from '../../runtime/mariadb.ts';
import type { Ledger } from '../../state/ledger.ts';
import { getBackupByFilename, insertBackup, markFailed, setBackupNotes } from '../../state/catalog.ts';
import { addTemp, dropTemp } from '../../state/operations.ts';
import { archiveBaseName, archiveFileName, ENTRY, FORMAT_VERSION, GENERATOR, type ArchiveMetadata, type BackupType } from '../../archive/format.ts';
import { ALGO } from '../../archive/crypto.ts';
import { partialName, writeArchive, type Source, type WriteResult } from '../../archive/write.ts';
import { finalizeArchive } from './finalize.ts';
import { autoNote, parseAutoNote } from './auto-notes.ts';

/** A backup once named: its row (null without a ledger) and the files it writes. */
export interface NamedBackup {
  id: number | null;
  date: Date;
  filename: string;
  /** absolute path of the finished archive */
  file: string;
  /** where database.sql is written (0600, must not exist yet) before it goes into the archive */
  databaseFile: string;
  /** the files that exist only while the backup is being written, and the archive's final name (no
   * backup until its row succeeded): journaled, so recovery removes them after a crash */
  partials: string[];
}

/** What the caller's database step put in databaseFile. */
export interface DatabasePart {
  size_bytes: number;
  sha256: string;
  table_row_counts: Record<string, number>;
  /** per table: primary key and its highest value at dump time (metadata.table_ids) */
  table_ids?: Record<string, { pk: string | null; max_id: number | null }>;
  /** how long phpBorg's units were stopped for it; 0 when they were not */
  maintenance_window_ms: number;
  /** why the file holds no dump (metadata.notes and the row then say so); absent when it does */
  skipped?: string;
}

/** metadata's table_row_counts and table_ids from one pass over the tables */
export function splitStats(stats: Record<string, TableStat>): { table_row_counts: Record<string, number>; table_ids: Record<string, { pk: string | null; max_id: number | null }> } {
  const table_row_counts: Record<string, number> = {};
  const table_ids: Record<string, { pk: string | null; max_id: number | null }> = {};
  for (const [t, st] of Object.entries(stats)) {
    table_row_counts[t] = st.rows;
    table_ids[t] = { pk: st.pk, max_id: st.max_id };
  }
  return { table_row_counts, table_ids };
}

export interface WriteBackupOptions {
  type: BackupType;
  /** the storage dir: exists, 0700 */
  dir: string;
  /** the wanted date; it moves on by a second while the name is taken (catalog or disk) */
  at: Date;
  /** the catalog; null when it is unusable (the sidecars alone then describe the archive) */
  ledger: Ledger | null;
  actor: Actor;
  jobId?: string | null;
  /** the operation journal entry that owns the temporaries (null: no usable ledger) */
  journal: { ledger: Ledger; id: number } | null;
  notes: string | null;
  passphrase: string | null;
  versions: Versions;
  /** the install's entries before database.sql (metadata.json is put first, here) and after it (code/) */
  head: Source[];
  code: Source[];
  /** plannedSize() of head and code */
  plan: { total_size_bytes: number; files_count: number };
  /** produces database.sql at named.databaseFile: a dump, or notDumped() */
  database(named: NamedBackup): Promise<DatabasePart>;
  /** the window the attempt has taken so far, recorded on a failed row */
  failedWindowMs?(): number | undefined;
  signal?: AbortSignal;
  onWarning?(message: string): void;
  onStage?(stage: 'archive' | 'finalize', named: NamedBackup): void;
  onProgress?(done: number, total: number): void;
}

export interface WrittenBackup extends NamedBackup {
  sha256: string;
  /** HMAC of the encrypted file (null when plain) */
  mac: string | null;
  size_bytes: number;
  files_count: number;
  encrypted: boolean;
  notes: string | null;
  metadata: ArchiveMetadata;
  database: DatabasePart;
}

/** A free name: the date moves on by a second while the archive's name is in the catalog or on disk. */
function freeDate(dir: string, ledger: Ledger | null, at: Date, type: BackupType): Date {
  let d = new Date(Math.floor(at.getTime() / 1000) * 1000);
  for (let i = 0; i < 120; i++) {
    const name = archiveFileName(d, type);
    if (!existsSync(join(dir, name)) && !(ledger && getBackupByFilename(ledger, name))) return d;
    d = new Date(d.getTime() + 1000);
  }
  throw new TaskError('name_taken', `no free archive name in ${dir} near ${at.toISOString()}`);
}

/** The notes of a backup whose database.sql may hold no dump. */
function notesWith(notes: string | null, skipped: string | undefined): string | null {
  if (skipped === undefined) return notes;
  const auto = parseAutoNote(notes);
  if (auto) return autoNote(auto.code, { ...auto.params, database_skipped: skipped });
  return [notes, `database NOT included: ${skipped}`].filter(Boolean).join('; ');
}

/**
 * database.sql when there is no dump to put in it: an SQL comment saying so and why. Restoring it
 * leaves an empty database, which is the state the backup was taken in.
 */
export async function notDumped(file: string, why: string): Promise<DatabasePart> {
  const text = `-- phpborg-keeper: the database was NOT dumped.\n-- reason: ${why.replace(/\n/g, ' ')}\n`;
  await rm(file, { force: true });
  await writeFile(file, text, { mode: 0o600, flag: 'wx' });
  return {
    size_bytes: Buffer.byteLength(text),
    sha256: createHash('sha256').update(text).digest('hex'),
    table_row_counts: {},
    maintenance_window_ms: 0,
    skipped: why,
  };
}

export async function writeBackup(o: WriteBackupOptions): Promise<WrittenBackup> {
  const date = freeDate(o.dir, o.ledger, o.at, o.type);
  const filename = archiveFileName(date, o.type);
  const root = archiveBaseName(date);
  const file = join(o.dir, filename);
  const databaseFile = join(o.dir, partialName(`${root}-${o.type}.database.sql`));
  const encrypted = !!o.passphrase;
  const id = o.ledger
    ? insertBackup(o.ledger, {
        filename,
        filepath: file,
        backup_type: o.type,
        notes: o.notes,
        encrypted,
        created_at: date.toISOString(),
        created_by: o.actor.id,
        created_by_name: o.actor.name,
        job_id: o.jobId ?? null,
      })
    : null;
  const named: NamedBackup = { id, date, filename, file, databaseFile, partials: [databaseFile, join(o.dir, partialName(filename)), file] };
  // journaled before any of them exists
  if (o.journal) addTemp(o.journal.ledger, o.journal.id, named.partials.map((path) => ({ path })));
  const release = () => o.journal && dropTemp(o.journal.ledger, o.journal.id, named.partials);
  try {
    const database = await o.database(named);
    const notes = notesWith(o.notes, database.skipped);
    if (o.ledger && id !== null && notes !== o.notes) setBackupNotes(o.ledger, id, notes);
    const metadata = buildMetadata(o, date, database, notes);
    o.onStage?.('archive', named);
    const written: WriteResult = await writeArchive({
      dir: o.dir,
      fileName: filename,
      root,
      passphrase: o.passphrase,
      plannedBytes: metadata.total_size_bytes,
      signal: o.signal,
      onWarning: o.onWarning,
      onProgress: o.onProgress,
      sources: [
        { kind: 'buffer', path: ENTRY.metadata, data: Buffer.from(JSON.stringify(metadata, null, 2) + '\n'), mode: 0o600 },
        ...o.head,
        { kind: 'file', path: ENTRY.database, from: databaseFile },
        ...o.code,
      ],
    });
    await rm(databaseFile, { force: true });
    o.onStage?.('finalize', named);
    // only now does the backup exist: 0600, sidecars, row succeeded
    await finalizeArchive(written, metadata, date, o.ledger && id !== null ? { ledger: o.ledger, id } : null);
    release();
    return {
      ...named,
      file: written.file,
      sha256: written.sha256,
      mac: written.mac,
      size_bytes: written.size_bytes,
      files_count: written.files_count,
      encrypted,
      notes,
      metadata,
      database,
    };
  } catch (e) {
    if (o.ledger && id !== null) markFailed(o.ledger, id, { maintenance_window_ms: o.failedWindowMs?.() });
    for (const f of named.partials) await rm(f, { force: true }).catch(() => {});
    release();
    throw e;
  }
}

function buildMetadata(o: WriteBackupOptions, date: Date, db: DatabasePart, notes: string | null): ArchiveMetadata {
  const encrypted = !!o.passphrase;
  return {
    generator: GENERATOR,
    format_version: FORMAT_VERSION,
    backup_date: date.toISOString(),
    ...o.versions,
    encrypted,
    encryption_algo: encrypted ? ALGO : null,
    compression: 'gzip',
    total_size_bytes: o.plan.total_size_bytes + db.size_bytes,
    files_count: o.plan.files_count + 1,
    database_size_bytes: db.size_bytes,
    database_sha256: db.sha256,
    table_row_counts: db.table_row_counts,
    ...(db.table_ids ? { table_ids: db.table_ids } : {}),
    created_by_user_id: o.actor.id,
    created_by: o.actor.name,
    backup_type: o.type,
    notes,
    maintenance_window_ms: db.maintenance_window_ms,
  };
}
