// Which backups exist when everything else is broken: the ledger read directly (read-only), or, when
// the ledger is missing or corrupt, the `<name>.json` sidecars of the storage dir. Also rebuilds a new
// ledger's catalog from those sidecars (emergency restore with the ledger gone, bare-metal restore).
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { KeeperConfig } from '../../runtime/config.ts';
import { checkLedger, ledgerPath, openLedger, type Ledger } from '../../state/ledger.ts';
import { completedBackup, getBackupByFilename, insertCompleted, listBackups } from '../../state/catalog.ts';
import { getSettings } from '../../state/settings.ts';
import { parseArchiveFileName, readSidecar, sidecarPaths, type ArchiveMetadata, type Sidecar } from '../../archive/index.ts';
import { errorMessage } from '../../runtime/error-message.ts';
import { ownStorageDir } from '../../runtime/storage-path.ts';

export type LedgerState = { state: 'ok'; file: string } | { state: 'missing'; file: string } | { state: 'corrupt'; file: string; error: string };

/** Opens the ledger read-only and checks it can be used (integrity, catalog table); never writes. */
export function probeLedger(config: KeeperConfig): LedgerState {
  const file = ledgerPath(config.paths.state);
  if (!existsSync(file)) return { state: 'missing', file };
  try {
    checkLedger(file);
    return { state: 'ok', file };
  } catch (e) {
    return { state: 'corrupt', file, error: errorMessage(e) };
  }
}

/** A backup as the emergency list shows it, from the catalog or from a sidecar. */
export interface FoundBackup {
  /** catalog id; null when found through its sidecar only */
  id: number | null;
  filename: string;
  file: string;
  size_bytes: number;
  created_at: string;
  backup_type: string;
  phpborg_version: string | null;
  git_commit: string | null;
  encrypted: boolean;
  sha256: string | null;
  mac: string | null;
  key_check: string | null;
  metadata: ArchiveMetadata | null;
  source: 'ledger' | 'sidecar';
}

/** The storage dir: the backup_storage_path setting when the ledger is readable, else config.paths.storage. */
export function storageDir(config: KeeperConfig, ledger: LedgerState): string {
  if (ledger.state !== 'ok') return config.paths.storage;
  const db = openLedger(ledger.file, { readonly: true });
  try {
    return ownStorageDir(getSettings(db, config.paths.storage).backup_storage_path);
  } catch {
    return config.paths.storage;
  } finally {
    db.close();
  }
}

/** Succeeded backups of the catalog, newest first, whose file is still there; sidecar fields merged in. */
export async function listFromLedger(file: string): Promise<FoundBackup[]> {
  const db = openLedger(file, { readonly: true });
  let rows;
  try {
    rows = listBackups(db, { status: 'succeeded' });
  } finally {
    db.close();
  }
  const out: FoundBackup[] = [];
  for (const r of rows) {
    if (!existsSync(r.filepath)) continue;
    const side = await readSidecarFile(r.filepath);
    out.push({
      id: r.id,
      filename: r.filename,
      file: r.filepath,
      size_bytes: r.size_bytes,
      created_at: r.created_at,
      backup_type: r.backup_type,
      phpborg_version: r.phpborg_version,
      git_commit: r.git_commit,
      encrypted: r.encrypted,
      sha256: r.hash_sha256,
      mac: r.mac,
      key_check: side?.key_check ?? null,
      metadata: side?.metadata ?? null,
      source: 'ledger',
    });
  }
  return out;
}

/** The archive core's reading of `<file>.json`; null when absent or invalid. */
const readSidecarFile = (archive: string): Promise<Sidecar | null> => readSidecar(archive).catch(() => null);

/** Every archive of the storage dir that has a valid sidecar, newest first. */
export async function listFromSidecars(dir: string): Promise<FoundBackup[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: FoundBackup[] = [];
  for (const name of names) {
    if (!parseArchiveFileName(name)) continue;
    const file = join(dir, name);
    const side = await readSidecarFile(file);
    if (!side || side.file !== name) continue;
    const size = await stat(file).then((s) => s.size, () => null);
    if (size === null) continue;
    out.push(fromSidecar(file, side));
  }
  return out.sort((a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : a.filename < b.filename ? 1 : -1));
}

export function fromSidecar(file: string, side: Sidecar): FoundBackup {
  return {
    id: null,
    filename: side.file,
    file,
    size_bytes: side.size_bytes,
    created_at: side.metadata.backup_date,
    backup_type: side.metadata.backup_type,
    phpborg_version: side.metadata.phpborg_version,
    git_commit: side.metadata.git_commit,
    encrypted: side.metadata.encrypted,
    sha256: side.sha256,
    mac: side.mac,
    key_check: side.key_check,
    metadata: side.metadata,
    source: 'sidecar',
  };
}

/** The sidecar of one archive as a FoundBackup; null when it has none (or an invalid one). */
export async function foundFromFile(file: string): Promise<FoundBackup | null> {
  const side = await readSidecarFile(file);
  return side ? fromSidecar(file, side) : null;
}

/**
 * Puts archives into the catalog of a (new) ledger from what their sidecars say; those already listed
 * are left alone. Returns the ids by file name.
 */
export function registerFound(ledger: Ledger, found: FoundBackup[], opts: { origin?: string; actor: { id: number | null; name: string } }): Map<string, number> {
  const ids = new Map<string, number>();
  for (const b of found) {
    const existing = getBackupByFilename(ledger, b.filename);
    if (existing) {
      ids.set(b.filename, existing.id);
      continue;
    }
    if (!b.sha256) continue;
    const md = b.metadata;
    const side = sidecarPaths(b.file);
    const id = insertCompleted(
      ledger,
      {
        filename: b.filename,
        filepath: b.file,
        backup_type: b.backup_type,
        notes: md?.notes ?? null,
        encrypted: b.encrypted,
        created_at: b.created_at,
        created_by: opts.actor.id,
        created_by_name: md?.created_by ?? opts.actor.name,
        origin: opts.origin ?? 'recovered',
      },
      completedBackup(
        {
          size_bytes: b.size_bytes,
          sha256: b.sha256,
          mac: b.mac,
          sha256_path: existsSync(side.sha256) ? side.sha256 : null,
          json_path: existsSync(side.json) ? side.json : null,
        },
        { ...md, phpborg_version: b.phpborg_version, git_commit: b.git_commit },
      ),
    );
    ids.set(b.filename, id);
  }
  return ids;
}
