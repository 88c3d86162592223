// The restore preview: what restoring an archive would lose or change, computed from the archive's
// first entries (readHead stops before database.sql) and the live install. Fast whatever the archive's
// size. Reused by the update's manual-rollback preview. Secrets never appear: names only.
import { readFile, readdir, lstat, statfs, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { KeeperConfig } from '../../runtime/config.ts';
import { envPath, isPhpborgFile, parseEnv, type PhpborgEnv } from '../../runtime/install.ts';
import { describe as gitDescribe, headCommit, commitDate, countCommits, resolveCommit, trackedEdits } from '../../runtime/git.ts';
import { readSettingsTable, rowsAbove, tableRowCounts, withConnection } from '../../runtime/mariadb.ts';
import { archiveFileName, readHead, ENTRY, type ArchiveMetadata, type BackupType, type Expected, type Head } from '../../archive/index.ts';
import type { Ledger } from '../../state/ledger.ts';
import { lastSucceededBackup, type BackupRow } from '../../state/catalog.ts';
import { lastSucceededUpdate } from '../../state/updates.ts';
import { describeTree, exists } from './files.ts';
import { diffEnv, diffHashes, diffSettings, headSubtree, type NameDiff } from './diff.ts';
import { errorMessage } from '../../runtime/error-message.ts';import { databaseChange, databaseChangeMessage, databaseTargetProblem } from '../../runtime/db-guard.ts';


export interface RestorePreview {
  backup: {
    id: number | null;
    filename: string;
    date: string;
    version: string | null;
    commit: string | null;
    size_bytes: number;
    type: string;
    encrypted: boolean;
    notes: string | null;
  };
  current: { version: string | null; commit: string | null; last_update: string | null };
  database: {
    servers_added: number | null;
    archives_added: number | null;
    users_added: number | null;
    /** per table: rows now, rows in the backup, rows added since (ids above the backup's highest; null: unknown) */
    tables: Record<string, { now: number | null; backup: number | null; added: number | null }>;
    /** how the *_added counts were found: ids recorded in the archive, or timestamps (older archives) */
    added_from: 'ids' | 'timestamps';
    /** the *_added counts that cannot be known for this archive */
    unknown: string[];
    /** tables that exist now and not in the backup: the restore drops them */
    tables_dropped: string[];
  } | null;
  settings: { modified: string[]; added: string[]; removed: string[] } | null;
  config: {
    env_changed: string[];
    sudoers: NameDiff;
    systemd: NameDiff;
    etc: NameDiff;
    ssh: { added: string[]; removed: string[]; changed: string[] };
    /** the phpborg-borg user's SSH dir; null when the archive does not hold it (the restore keeps the live one) */
    ssh_borg: NameDiff | null;
    /**
     * files of the config trees (sudoers, units, /etc/phpborg, the SSH dirs) that exist now and not
     * in the backup, as absolute paths: the restore deletes them (the safety backup keeps a copy)
     */
    not_in_backup: string[];
  };
  /** tracked files of the code dir with uncommitted edits: the restore replaces them with the backup's */
  code: { local_edits: string[] | null };
  version: { from: string | null; to: string | null; commits_behind: number | null; commits_ahead: number | null; downgrade: boolean | null };
  /**
   * the backup the restore takes of the current install first; null when skipped. Its name comes
   * from the moment it starts, so only its pattern is known here.
   */
  safety_backup: { type: BackupType; directory: string; name: string; description: string } | null;
  free_space: { needed: number; available: number; ok: boolean; paths: { path: string; needed: number; available: number }[] };
  /** always false: the preview reads only the archive's head; the restore verifies it whole first */
  verified: false;
  /** parts that could not be compared (e.g. the database is down), in English */
  warnings: string[];
}

export interface PreviewInput {
  config: KeeperConfig;
  ledger: Ledger | null;
  /** absolute path of the archive */
  file: string;
  passphrase: string | null;
  /** the catalog row, when the archive is catalogued */
  backup?: BackupRow | null;
  expected?: Expected;
  /** where the safety backup goes (backup_storage_path); defaults to config.paths.storage */
  storageDir?: string;
  /** the safety backup's type, or null when none will be taken */
  safetyType?: BackupType | null;
  /** a head already read (restoreInstall reads it once) */
  head?: Head;
}

/** The live install's .env: raw text and typed view; null when missing or unreadable. */
export async function readLiveEnv(config: KeeperConfig): Promise<{ text: string; env: PhpborgEnv } | null> {
  try {
    const text = await readFile(envPath(config), 'utf8');
    return { text, env: parseEnv(text).env };
  } catch {
    return null;
  }
}

const sha = async (file: string) => (await describeTree(file))['']?.sha256 ?? '';

/** phpborg-* files of a flat system dir (sudoers.d), by name → SHA-256. */
async function livePrefixedFiles(dir: string, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!(await exists(dir))) return out;
  for (const name of await readdir(dir)) {
    if (!isPhpborgFile(name, prefix)) continue;
    const p = join(dir, name);
    if ((await lstat(p)).isFile()) out.set(name, await sha(p));
  }
  return out;
}

/** phpborg-* entries of the systemd dir (files inside prefixed dirs too, and *.wants/phpborg-*), regular files only. */
async function liveSystemdFiles(dir: string, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!(await exists(dir))) return out;
  for (const name of await readdir(dir)) {
    const p = join(dir, name);
    const st = await lstat(p);
    if (isPhpborgFile(name, prefix)) {
      for (const [rel, e] of Object.entries(await describeTree(p))) {
        if (e.type === 'file') out.set(rel ? `${name}/${rel}` : name, e.sha256!);
      }
    } else if (st.isDirectory() && name.endsWith('.wants')) {
      for (const sub of await readdir(p)) {
        const q = join(p, sub);
        if (isPhpborgFile(sub, prefix) && (await lstat(q)).isFile()) out.set(`${name}/${sub}`, await sha(q));
      }
    }
  }
  return out;
}

/** Every regular file of a tree, relative path → SHA-256. */
async function liveTreeFiles(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [rel, e] of Object.entries(await describeTree(dir))) if (e.type === 'file') out.set(rel, e.sha256!);
  return out;
}

/**
 * Older archives (no table_ids): rows created after the backup, told by timestamps. phpBorg's
 * DATETIME columns are filled by MariaDB (DEFAULT CURRENT_TIMESTAMP / NOW()), i.e. in the server's
 * time zone: the backup's UTC instant is shifted by the server's current offset (no time zone tables
 * needed).
 */
async function rowsAddedSince(env: PhpborgEnv, since: Date): Promise<{ servers: number | null; archives: number | null; users: number | null }> {
  return withConnection(env, async (c) => {
    const [off] = await c.query('SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW()) AS s');
    const offset = Number((off as { s: number | string }[])[0].s);
    const local = new Date(since.getTime() + Math.round(offset / 60) * 60_000).toISOString().slice(0, 19).replace('T', ' ');
    const count = async (table: string, col: string): Promise<number | null> => {
      try {
        const [rows] = await c.query(`SELECT COUNT(*) AS n FROM ${c.escapeId(table)} WHERE ${c.escapeId(col)} > ?`, [local]);
        return Number((rows as { n: number | string }[])[0].n);
      } catch {
        return null;
      }
    };
    // servers.created_at is no witness: phpBorg's migration 004 added it and stamped every existing
    // row with its own run time, so servers older than the column look new
    return { servers: null, archives: await count('archives', 'end'), users: await count('users', 'created_at') };
  });
}

/** Rows added since the backup, per table, from the ids the archive recorded. */
async function addedByIds(env: PhpborgEnv, ids: NonNullable<ArchiveMetadata['table_ids']>): Promise<Record<string, number | null>> {
  const wanted: { table: string; pk: string; maxId: number }[] = [];
  for (const [table, t] of Object.entries(ids)) if (t.pk) wanted.push({ table, pk: t.pk, maxId: t.max_id ?? 0 });
  return rowsAbove(env, wanted);
}

/** Free bytes where `path` (or its nearest existing parent) lives; bavail, so root's reserve stays a margin. */
async function freeBytes(path: string): Promise<{ dev: number; free: number }> {
  let p = path;
  while (!(await exists(p)) && dirname(p) !== p) p = dirname(p);
  const s = await statfs(p);
  return { dev: (await stat(p)).dev, free: Number(s.bavail) * Number(s.bsize) };
}

/**
 * Space a restore needs: the archive's content (total_size_bytes) in the staging dir beside the code
 * dir, and a safety backup in the storage dir (estimated as the current install's last backup size, or
 * this archive's size). Paths on one filesystem add up.
 */
export async function freeSpace(
  config: KeeperConfig,
  metadata: ArchiveMetadata,
  archiveSize: number,
  opts: { storageDir: string; safety: boolean; ledger: Ledger | null },
): Promise<RestorePreview['free_space']> {
  const needs: { path: string; needed: number }[] = [{ path: dirname(config.paths.code), needed: Math.ceil(metadata.total_size_bytes * 1.05) }];
  if (opts.safety) {
    let last = archiveSize;
    if (opts.ledger) {
      const r = lastSucceededBackup(opts.ledger);
      if (r) last = Math.max(last, r.size_bytes);
    }
    needs.push({ path: opts.storageDir, needed: Math.ceil(last * 1.1) });
  }
  const byDev = new Map<number, { path: string; needed: number; available: number }>();
  for (const n of needs) {
    const f = await freeBytes(n.path);
    const cur = byDev.get(f.dev);
    if (cur) cur.needed += n.needed;
    else byDev.set(f.dev, { path: n.path, needed: n.needed, available: f.free });
  }
  const paths = [...byDev.values()];
  const worst = paths.reduce((a, b) => (b.available - b.needed < a.available - a.needed ? b : a));
  return { needed: worst.needed, available: worst.available, ok: paths.every((p) => p.available >= p.needed), paths };
}

/** Settles a promise into a value or an error, so work started early never rejects unhandled. */
const settle = <T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: Error }> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (e: unknown) => ({ ok: false as const, error: e instanceof Error ? e : new Error(String(e)) }),
  );

/** The preview trusts what the archive's head claims: say so wherever it is shown. */
export const NOT_VERIFIED = 'the archive is not verified yet: this preview read only its head (metadata, settings, .env); the restore verifies every byte first';

export async function buildPreview(input: PreviewInput): Promise<RestorePreview> {
  const { config } = input;
  const warnings: string[] = [];
  const safetyType = input.safetyType === undefined ? 'pre_restore' : input.safetyType;
  const prefix = config.file_prefix;
  const code = config.paths.code;
  // What does not depend on the archive starts at once, beside reading its head: the preview's
  // latency is then the slowest of them, not their sum.
  const liveP = readLiveEnv(config);
  const editsP = settle(trackedEdits(code));
  const dbP = settle(liveP.then((live) => (live ? Promise.all([tableRowCounts(live.env), readSettingsTable(live.env)]) : null)));
  const treesP = settle(
    Promise.all([
      liveTreeFiles(config.paths.ssh),
      liveTreeFiles(config.paths.ssh_borg),
      livePrefixedFiles(config.paths.sudoers, prefix),
      liveSystemdFiles(config.paths.systemd, prefix),
      liveTreeFiles(config.paths.etc),
    ]),
  );
  const gitP = Promise.all([gitDescribe(code), headCommit(code).catch(() => null)]);
  const sizeP = settle(input.backup ? Promise.resolve(input.backup.size_bytes) : stat(input.file).then((s) => s.size));
  gitP.catch(() => {});

  const head = input.head ?? (await readHead(input.file, { passphrase: input.passphrase, expected: input.expected }));
  const md = head.metadata;
  const size = await sizeP;
  if (!size.ok) throw size.error;
  const archiveSize = size.value;
  const live = await liveP;
  if (!live) warnings.push(`the live .env (${envPath(config)}) is missing or incomplete: database and settings not compared`);

  // database
  let database: RestorePreview['database'] = null;
  let settings: RestorePreview['settings'] = null;
  if (live) {
    try {
      const since = new Date(md.backup_date);
      const ids = md.table_ids;
      const [byIds, byTime, db] = await Promise.all([
        ids ? addedByIds(live.env, ids) : Promise.resolve(null),
        ids ? Promise.resolve(null) : rowsAddedSince(live.env, since),
        dbP,
      ]);
      if (!db.ok) throw db.error;
      const [counts, rows] = db.value!;
      const tables: Record<string, { now: number | null; backup: number | null; added: number | null }> = {};
      for (const t of new Set([...Object.keys(counts), ...Object.keys(md.table_row_counts)]).values()) {
        // a table the backup does not hold is new as a whole
        const added = byIds ? (t in md.table_row_counts ? (byIds[t] ?? null) : (counts[t] ?? null)) : null;
        tables[t] = { now: counts[t] ?? null, backup: md.table_row_counts[t] ?? null, added };
      }
      const added = byIds
        ? { servers: tables.servers?.added ?? null, archives: tables.archives?.added ?? null, users: tables.users?.added ?? null }
        : byTime!;
      const unknown = (['servers', 'archives', 'users'] as const).filter((t) => added[t] === null).map((t) => `${t}_added`);
      if (!ids) {
        warnings.push(
          `this archive predates per-table id records: ${unknown.length ? `${unknown.join(', ')} cannot be known; ` : ''}archives and users added since are counted from their timestamps`,
        );
      }
      database = {
        servers_added: added.servers,
        archives_added: added.archives,
        users_added: added.users,
        tables,
        added_from: ids ? 'ids' : 'timestamps',
        unknown,
        tables_dropped: Object.keys(counts).filter((t) => !(t in md.table_row_counts)).sort(),
      };
      settings = diffSettings(rows, head.settings, live.env.APP_SECRET);
    } catch (e) {
      warnings.push(`the database could not be read (${errorMessage(e)}): database and settings not compared`);
    }
  }

  // configuration
  const envBackup = head.config.get(ENTRY.env);
  const sshBackup = new Map<string, string>();
  const borgBackup = new Map<string, string>();
  for (const [p, e] of head.ssh) {
    if (p.startsWith(ENTRY.ssh + '/')) sshBackup.set(p.slice(ENTRY.ssh.length + 1), e.sha256);
    else if (p.startsWith(ENTRY.sshBorg + '/')) borgBackup.set(p.slice(ENTRY.sshBorg.length + 1), e.sha256);
  }
  const hasBorg = head.sshRoots.has(ENTRY.sshBorg);
  const trees = await treesP;
  if (!trees.ok) throw trees.error;
  const [liveSsh, liveBorg, liveSudoers, liveSystemd, liveEtc] = trees.value;
  const archiveEnv = envBackup ? (() => {
    try {
      return parseEnv(envBackup.toString('utf8')).env;
    } catch {
      return null;
    }
  })() : null;
  if (archiveEnv) {
    const unsafe = databaseTargetProblem(archiveEnv);
    if (unsafe) warnings.push(`${unsafe}: a restore of this archive will be refused`);
    const changes = databaseChange(live?.env ?? null, archiveEnv);
    if (changes.length) warnings.push(databaseChangeMessage(changes));
  }
  const configDiff: RestorePreview['config'] = {
    env_changed: diffEnv(live?.text ?? null, envBackup ? envBackup.toString('utf8') : null).changed,
    sudoers: diffHashes(liveSudoers, headSubtree(head.config, ENTRY.sudoers)),
    systemd: diffHashes(liveSystemd, headSubtree(head.config, ENTRY.systemd)),
    etc: diffHashes(liveEtc, headSubtree(head.config, ENTRY.etc)),
    ssh: diffHashes(liveSsh, sshBackup),
    ssh_borg: hasBorg ? diffHashes(liveBorg, borgBackup) : null,
    not_in_backup: [],
  };
  configDiff.not_in_backup = [
    ...configDiff.sudoers.added.map((n) => join(config.paths.sudoers, n)),
    ...configDiff.systemd.added.map((n) => join(config.paths.systemd, n)),
    ...configDiff.etc.added.map((n) => join(config.paths.etc, n)),
    ...configDiff.ssh.added.map((n) => join(config.paths.ssh, n)),
    ...(configDiff.ssh_borg?.added ?? []).map((n) => join(config.paths.ssh_borg, n)),
  ];
  if (!hasBorg) warnings.push(`the backup does not hold the phpborg-borg SSH dir: the restore keeps ${config.paths.ssh_borg} as it is`);
  const edits = await editsP;
  if (!edits.ok) warnings.push(`uncommitted edits in ${code} could not be listed (${errorMessage(edits.error)})`);
  // also as warnings: every reader of the preview (CLI, web UI) shows those
  else if (edits.value.length) warnings.push(`uncommitted edits to tracked files are replaced by the backup's: ${edits.value.join(', ')}`);
  if (configDiff.not_in_backup.length) {
    const kept = safetyType ? 'the safety backup keeps a copy' : 'no safety backup keeps a copy';
    warnings.push(`not in the backup, deleted by the restore (${kept}): ${configDiff.not_in_backup.join(', ')}`);
  }

  // version
  const [curVersion, curCommit] = await gitP;
  let behind: number | null = null;
  let ahead: number | null = null;
  if (curCommit && md.git_commit && /^[0-9a-f]{7,64}$/.test(md.git_commit)) {
    const known = await resolveCommit(code, md.git_commit).catch(() => null);
    if (known) {
      [behind, ahead] = await Promise.all([
        countCommits(code, known, curCommit).catch(() => null),
        countCommits(code, curCommit, known).catch(() => null),
      ]);
    } else warnings.push(`the backup's commit ${md.git_commit.slice(0, 12)} is not in the current repository: commit distance unknown`);
  }
  const lastUpdate = (input.ledger ? lastSucceededUpdate(input.ledger)?.finished_at : null) ?? (curCommit ? await commitDate(code, 'HEAD') : null);

  const storageDir = input.storageDir ?? config.paths.storage;
  return {
    backup: {
      id: input.backup?.id ?? null,
      filename: input.backup?.filename ?? input.file.split('/').pop()!,
      date: md.backup_date,
      version: md.phpborg_version,
      commit: md.git_commit,
      size_bytes: archiveSize,
      type: md.backup_type,
      encrypted: md.encrypted,
      notes: md.notes,
    },
    current: { version: curVersion, commit: curCommit, last_update: lastUpdate },
    database,
    settings,
    config: configDiff,
    code: { local_edits: edits.ok ? edits.value : null },
    version: { from: curVersion, to: md.phpborg_version, commits_behind: behind, commits_ahead: ahead, downgrade: behind === null ? null : behind > 0 },
    safety_backup: safetyType
      ? {
          type: safetyType,
          directory: storageDir,
          name: `phpborg-backup-YYYY-MM-DD-HHmmss-${safetyType}.tar.gz`,
          description: `a ${safetyType} backup of the current install, written to ${storageDir} and named by the time it starts`,
        }
      : null,
    free_space: await freeSpace(config, md, archiveSize, { storageDir, safety: !!safetyType, ledger: input.ledger }),
    verified: false,
    warnings: [...warnings, NOT_VERIFIED],
  };
}
