// Archive format v1 (docs/archive-format.md): names, layout, and the schemas of the JSON files inside and beside
// an archive. The only place these shapes are defined; writers and readers import them from here.
import { createHmac } from 'node:crypto';
import * as v from 'valibot';

export const FORMAT_VERSION = 1 as const;
/** written into metadata.json, manifest.json and the sidecar so a reader can refuse anything else */
export const GENERATOR = 'phpborg-keeper' as const;

export const BACKUP_TYPES = ['manual', 'scheduled', 'pre_update', 'pre_restore', 'pre_emergency_restore'] as const;
export const BackupTypeSchema = v.picklist(BACKUP_TYPES, `expected a backup type: ${BACKUP_TYPES.join(', ')}`);
export type BackupType = v.InferOutput<typeof BackupTypeSchema>;

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** `phpborg-backup-YYYY-MM-DD-HHmmss` in UTC: the archive's top folder and the start of its file name. */
export function archiveBaseName(date: Date): string {
  return `phpborg-backup-${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}-` +
    `${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}`;
}

/** `phpborg-backup-YYYY-MM-DD-HHmmss-<type>.tar.gz` (encrypted archives keep the name). */
export function archiveFileName(date: Date, type: BackupType): string {
  return `${archiveBaseName(date)}-${type}.tar.gz`;
}

export const ROOT_RE = /^phpborg-backup-(\d{4})-(\d{2})-(\d{2})-(\d{2})(\d{2})(\d{2})$/;
const FILE_RE = new RegExp(`^(phpborg-backup-\\d{4}-\\d{2}-\\d{2}-\\d{6})-(${BACKUP_TYPES.join('|')})\\.tar\\.gz$`);

/** Reads a keeper archive file name back (e.g. to list a storage dir whose ledger is gone); null if not one. */
export function parseArchiveFileName(name: string): { base: string; date: Date; type: BackupType } | null {
  const m = FILE_RE.exec(name);
  if (!m) return null;
  const r = ROOT_RE.exec(m[1])!;
  const date = new Date(Date.UTC(+r[1], +r[2] - 1, +r[3], +r[4], +r[5], +r[6]));
  if (Number.isNaN(date.getTime())) return null;
  return { base: m[1], date, type: m[2] as BackupType };
}

/** Sidecar names beside an archive. */
export const sidecarPaths = (archivePath: string) => ({ sha256: `${archivePath}.sha256`, json: `${archivePath}.json` });

// ---- layout: the entries an archive may hold, in this order ----------------------------------

/** Entry paths are relative to the top folder. Sections appear in this order; a reader may stop early. */
export const SECTIONS = ['metadata', 'settings', 'config', 'ssh', 'database', 'code', 'manifest'] as const;
export type Section = (typeof SECTIONS)[number];

export const ENTRY = {
  metadata: 'metadata.json',
  settings: 'settings.json',
  env: 'config/env.backup',
  sudoers: 'config/sudoers',
  systemd: 'config/systemd',
  etc: 'config/etc-phpborg',
  ssh: 'ssh',
  /** the phpborg-borg user's SSH dir (absent from archives made before it was backed up) */
  sshBorg: 'ssh-borg',
  database: 'database.sql',
  code: 'code',
  manifest: 'manifest.json',
} as const;

export interface SectionRule {
  section: Section;
  /** the subtree symlinks in it must stay within; null = no links allowed */
  linkScope: string | null;
}

/**
 * Which section a relative entry path belongs to, or null when format v1 has no place for it.
 * Single files may only be regular files; subtrees may hold dirs, files and links confined to the subtree.
 */
export function classifyEntry(rel: string, type: 'file' | 'dir' | 'symlink'): SectionRule | null {
  // no inner closures: this runs once per archived file
  const isFile = type === 'file';
  if (rel === ENTRY.metadata) return isFile ? { section: 'metadata', linkScope: null } : null;
  if (rel === ENTRY.settings) return isFile ? { section: 'settings', linkScope: null } : null;
  if (rel === ENTRY.database) return isFile ? { section: 'database', linkScope: null } : null;
  if (rel === ENTRY.manifest) return isFile ? { section: 'manifest', linkScope: null } : null;
  if (rel === ENTRY.code || rel.startsWith('code/')) return { section: 'code', linkScope: ENTRY.code };
  if (rel === ENTRY.ssh || rel.startsWith('ssh/')) return { section: 'ssh', linkScope: ENTRY.ssh };
  if (rel === ENTRY.sshBorg || rel.startsWith('ssh-borg/')) return { section: 'ssh', linkScope: ENTRY.sshBorg };
  if (rel === ENTRY.env) return isFile ? { section: 'config', linkScope: null } : null;
  if (rel.startsWith('config/sudoers/')) {
    // sudoers.d is flat: files only, no subdirs
    return isFile && !rel.slice(ENTRY.sudoers.length + 1).includes('/') ? { section: 'config', linkScope: null } : null;
  }
  if (rel === ENTRY.systemd || rel.startsWith('config/systemd/')) return { section: 'config', linkScope: ENTRY.systemd };
  if (rel === ENTRY.etc || rel.startsWith('config/etc-phpborg/')) return { section: 'config', linkScope: ENTRY.etc };
  if ((rel === ENTRY.sudoers || rel === 'config') && type === 'dir') return { section: 'config', linkScope: null };
  return null;
}

// ---- metadata.json ---------------------------------------------------------------------------------

const Sha256Hex = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex SHA-256'));
const Count = v.pipe(v.number(), v.integer(), v.minValue(0));
const IsoDate = v.pipe(v.string(), v.isoTimestamp('expected an ISO 8601 UTC timestamp'));
const NullableString = v.nullable(v.string());

export const MetadataSchema = v.object({
  generator: v.literal(GENERATOR, 'not a phpborg-keeper archive (metadata.generator)'),
  format_version: v.literal(FORMAT_VERSION, `unsupported archive format version (this keeper reads v${FORMAT_VERSION})`),
  backup_date: IsoDate,
  phpborg_version: NullableString,
  git_commit: NullableString,
  php_version: NullableString,
  mysql_version: NullableString,
  node_version: NullableString,
  borg_version: NullableString,
  encrypted: v.boolean(),
  encryption_algo: v.nullable(v.picklist(['AES-256-CBC'])),
  compression: v.picklist(['gzip']),
  /** bytes of the installation content backed up (files, dump, config), before compression */
  total_size_bytes: Count,
  files_count: Count,
  database_size_bytes: Count,
  database_sha256: Sha256Hex,
  table_row_counts: v.record(v.string(), Count),
  /**
   * per table: its single integer primary key and that key's highest value at dump time (max_id null:
   * no such key, or empty). Rows added since are those with a higher id. Absent from older archives.
   */
  table_ids: v.optional(v.record(v.string(), v.object({ pk: v.nullable(v.string()), max_id: v.nullable(Count) }))),
  created_by_user_id: v.nullable(v.pipe(v.number(), v.integer())),
  created_by: NullableString,
  backup_type: BackupTypeSchema,
  notes: NullableString,
  maintenance_window_ms: Count,
});
export type ArchiveMetadata = v.InferOutput<typeof MetadataSchema>;

// ---- settings.json ---------------------------------------------------------------------------------

/** A row of phpBorg's `settings` table. Secret values are replaced by `secretHash()` and flagged. */
export const SettingsRowSchema = v.object({
  key: v.string(),
  value: v.nullable(v.string()),
  category: v.nullable(v.string()),
  type: v.nullable(v.string()),
  description: v.nullable(v.string()),
  updated_at: v.nullable(v.string()),
  /** true when `value` is a keyed hash (`hmac-sha256:<hex>`), never the clear value */
  secret: v.boolean(),
});
export const SettingsFileSchema = v.array(SettingsRowSchema);
export type SettingsRow = v.InferOutput<typeof SettingsRowSchema>;
export type SettingsFile = v.InferOutput<typeof SettingsFileSchema>;

/** Which settings are secrets: never written in clear into an archive, never shown in a preview. */
export function isSecretSetting(key: string, type?: string | null): boolean {
  return type === 'password' || type === 'secret' || /pass(word|phrase)?|secret|token|api[_-]?key|private[_-]?key/i.test(key);
}

/**
 * The stand-in for a secret value: HMAC-SHA256 keyed by an install secret (e.g. `.env` APP_SECRET),
 * so two archives of the same install compare equal without revealing the value.
 */
export function secretHash(hashKey: string | Buffer, value: string): string {
  return `hmac-sha256:${createHmac('sha256', hashKey).update(value, 'utf8').digest('hex')}`;
}

// ---- manifest.json (last entry) ------------------------------------------------------------------------

export const ManifestEntrySchema = v.object({
  /** relative to the top folder, no trailing slash */
  path: v.string(),
  type: v.picklist(['file', 'dir', 'symlink']),
  size: Count,
  /** permission bits (mode & 0o7777) */
  mode: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(0o7777)),
  linkname: v.optional(v.string()),
  sha256: v.optional(Sha256Hex),
});
export const ManifestSchema = v.object({
  generator: v.literal(GENERATOR, 'not a phpborg-keeper manifest'),
  format_version: v.literal(FORMAT_VERSION),
  root: v.pipe(v.string(), v.regex(ROOT_RE, 'expected phpborg-backup-YYYY-MM-DD-HHmmss')),
  entries: v.array(ManifestEntrySchema),
});
export type ManifestEntry = v.InferOutput<typeof ManifestEntrySchema>;
export type Manifest = v.InferOutput<typeof ManifestSchema>;

// ---- <name>.json sidecar ---------------------------------------------------------------------------

export const SidecarSchema = v.object({
  generator: v.literal(GENERATOR, 'not a phpborg-keeper sidecar'),
  format_version: v.literal(FORMAT_VERSION),
  /** archive file name (no directory) */
  file: v.string(),
  created_at: IsoDate,
  size_bytes: Count,
  sha256: Sha256Hex,
  /** HMAC-SHA256 over the whole encrypted file, hex; null when not encrypted */
  mac: v.nullable(v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/))),
  /** HMAC(macKey, "phpborg-keeper key check"), hex: tells a wrong passphrase without reading the file */
  key_check: v.nullable(v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/))),
  metadata: MetadataSchema,
});
export type Sidecar = v.InferOutput<typeof SidecarSchema>;
