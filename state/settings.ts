// Keeper's backup settings, kept in the ledger (so a restored dump cannot undo them) and validated with valibot. On first
// use they are seeded from phpBorg's own `settings` rows where present; after that the ledger rules.
// The passphrase is write-only: the public view says only whether it is set, and its fingerprint.
import { isAbsolute } from 'node:path';
import * as v from 'valibot';
import type { Ledger } from './ledger.ts';
import { passphraseFingerprint } from '../archive/crypto.ts';

export const DAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const;

const Bool = v.boolean('expected true or false');
/** One schema per key: what a value must be. */
export const SettingSchemas = {
  backup_storage_path: v.pipe(
    v.string('expected an absolute path'),
    v.check((p) => isAbsolute(p) && !p.split('/').includes('..'), 'expected an absolute path without ".."'),
  ),
  backup_encryption_enabled: Bool,
  backup_encryption_passphrase: v.pipe(
    v.string('expected a string'),
    v.minLength(8, 'expected at least 8 characters'),
    v.maxLength(1024, 'expected at most 1024 characters'),
  ),
  backup_retention_count: v.pipe(
    v.number('expected a whole number from 1 to 50'),
    v.integer('expected a whole number from 1 to 50'),
    v.minValue(1, 'expected a whole number from 1 to 50'),
    v.maxValue(50, 'expected a whole number from 1 to 50'),
  ),
  backup_scheduled_enabled: Bool,
  backup_scheduled_day: v.picklist(DAYS, `expected one of ${DAYS.join(', ')}`),
  backup_scheduled_time: v.pipe(v.string('expected HH:MM'), v.regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM (00:00 to 23:59)')),
  backup_notify_email: Bool,
} as const;

export type SettingKey = keyof typeof SettingSchemas;
export const SETTING_KEYS = Object.keys(SettingSchemas) as SettingKey[];
export const PASSPHRASE_KEY = 'backup_encryption_passphrase';

export interface KeeperSettings {
  backup_storage_path: string;
  backup_encryption_enabled: boolean;
  /** helper-side only: never sent to a client */
  backup_encryption_passphrase: string | null;
  backup_retention_count: number;
  backup_scheduled_enabled: boolean;
  backup_scheduled_day: (typeof DAYS)[number];
  backup_scheduled_time: string;
  backup_notify_email: boolean;
}

/** What the API and the CLI show. */
export type PublicSettings = Omit<KeeperSettings, 'backup_encryption_passphrase'> & {
  backup_encryption_passphrase: { set: boolean; fingerprint: string | null };
};

export function defaultSettings(storageDefault: string): KeeperSettings {
  return {
    backup_storage_path: storageDefault,
    backup_encryption_enabled: false,
    backup_encryption_passphrase: null,
    backup_retention_count: 3,
    backup_scheduled_enabled: false,
    backup_scheduled_day: 'sunday',
    backup_scheduled_time: '02:00',
    backup_notify_email: false,
  };
}

/**
 * Checks a storage path against the install (system trees, the install's own dirs) and returns where
 * keeper will really write; throws the reason for a refused one. Lives with the platform (runtime/).
 */
export type StoragePathPolicy = (path: string) => string;

/** A wrong value: names the key, says what is expected. */
export class SettingsError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
    this.name = 'SettingsError';
  }
}

const SEEDED = '_seeded_from_phpborg';

/** Own keys only: `in` would also accept inherited names such as `__proto__` or `constructor`. */
const isSettingKey = (key: string): key is SettingKey => Object.hasOwn(SettingSchemas, key);

function validateOne(key: string, value: unknown): unknown {
  if (!isSettingKey(key)) throw new SettingsError(key, `unknown setting; known: ${SETTING_KEYS.join(', ')}`);
  const r = v.safeParse(SettingSchemas[key], value);
  if (!r.success) {
    const got = key === PASSPHRASE_KEY ? '' : ` (got ${JSON.stringify(value)})`;
    throw new SettingsError(key, `${r.issues[0].message}${got}`);
  }
  return r.output;
}

function applyStoragePolicy(policy: StoragePathPolicy, path: string): string {
  try {
    return policy(path);
  } catch (e) {
    throw new SettingsError('backup_storage_path', `refused: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Current settings with defaults for what was never set (config.paths.storage for the path). */
export function getSettings(ledger: Ledger, storageDefault: string): KeeperSettings {
  const s = defaultSettings(storageDefault) as unknown as Record<string, unknown>;
  const rows = ledger.prepare('SELECT key, value_json FROM settings').all() as { key: string; value_json: string }[];
  for (const r of rows) if (isSettingKey(r.key)) s[r.key] = JSON.parse(r.value_json);
  return s as unknown as KeeperSettings;
}

/** The settings without the passphrase: only whether it is set, and its fingerprint (archive core). */
export async function publicSettings(ledger: Ledger, storageDefault: string): Promise<PublicSettings> {
  const s = getSettings(ledger, storageDefault);
  const p = s.backup_encryption_passphrase;
  return { ...s, backup_encryption_passphrase: { set: !!p, fingerprint: p ? await passphraseFingerprint(p) : null } };
}

/**
 * Validates and stores a partial update (all keys or none). Unknown keys and wrong values throw a
 * SettingsError naming the key. A null passphrase clears it. Returns the keys whose value changed.
 */
export function updateSettings(ledger: Ledger, storageDefault: string, patch: unknown, now = new Date(), storagePath?: StoragePathPolicy): string[] {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    throw new SettingsError('(body)', 'expected an object of settings, e.g. {"backup_retention_count": 5}');
  }
  const current = getSettings(ledger, storageDefault) as unknown as Record<string, unknown>;
  const next: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(patch)) {
    next[key] = key === PASSPHRASE_KEY && (value === null || value === '') ? null : validateOne(key, value);
    if (key === 'backup_storage_path' && storagePath) next[key] = applyStoragePolicy(storagePath, next[key] as string);
  }
  const merged = { ...current, ...next };
  if (merged.backup_encryption_enabled === true && !merged[PASSPHRASE_KEY]) {
    throw new SettingsError(PASSPHRASE_KEY, 'encryption is enabled: set a passphrase first (keeper settings set-passphrase)');
  }
  const changed = Object.keys(next).filter((k) => JSON.stringify(next[k]) !== JSON.stringify(current[k]));
  const put = ledger.prepare(
    'INSERT INTO settings (key, value_json, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at',
  );
  const del = ledger.prepare('DELETE FROM settings WHERE key = ?');
  ledger.transaction(() => {
    for (const k of changed) {
      if (next[k] === null) del.run(k);
      else put.run(k, JSON.stringify(next[k]), now.toISOString());
    }
  })();
  return changed;
}

/** Turns a command-line string into the key's type ("true", "5", "sunday"), then validates it. */
export function parseSettingText(key: string, text: string): unknown {
  if (!isSettingKey(key)) throw new SettingsError(key, `unknown setting; known: ${SETTING_KEYS.join(', ')}`);
  return validateOne(key, coerce(key, text));
}

function coerce(key: SettingKey, text: string): unknown {
  const schema = SettingSchemas[key];
  if (schema === Bool) {
    const t = text.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(t)) return true;
    if (['0', 'false', 'no', 'off', ''].includes(t)) return false;
    return text;
  }
  if (key === 'backup_retention_count') return /^\s*-?\d+\s*$/.test(text) ? Number(text) : text;
  return text;
}

/** Whether the one-time seeding from phpBorg's settings already happened. */
export function isSeeded(ledger: Ledger): boolean {
  return !!ledger.prepare('SELECT 1 FROM settings WHERE key = ?').get(SEEDED);
}

/**
 * First start: takes backup_* values from phpBorg's `settings` rows (strings such as "1", "7") where
 * present and valid; backup_storage_path, phpBorg's Borg pool (/opt/backups, seeded by its migration
 * 001), becomes keeper's own subfolder of it, never the pool itself. Invalid ones are skipped and
 * reported. Runs once; later calls do nothing.
 */
export function seedSettings(
  ledger: Ledger,
  rows: { key: string; value: string | null }[],
  now = new Date(),
  storagePath?: StoragePathPolicy,
): { seeded: string[]; skipped: { key: string; reason: string }[] } {
  const seeded: string[] = [];
  const skipped: { key: string; reason: string }[] = [];
  if (isSeeded(ledger)) return { seeded, skipped };
  const put = ledger.prepare('INSERT OR IGNORE INTO settings (key, value_json, updated_at) VALUES (?, ?, ?)');
  ledger.transaction(() => {
    for (const r of rows) {
      if (!isSettingKey(r.key) || r.value === null) continue;
      if (r.key === PASSPHRASE_KEY && r.value === '') continue;
      try {
        // phpBorg keeps the notification address in backup_notify_email: an address means "on"
        const text = r.key === 'backup_notify_email' && /^[^@\s]+@[^@\s]+$/.test(r.value.trim()) ? 'true' : r.value;
        let value = parseSettingText(r.key, text);
        // phpBorg's value is its Borg pool: keeper's archives go in their own subfolder of it
        if (r.key === 'backup_storage_path' && storagePath) value = applyStoragePolicy(storagePath, value as string);
        if (put.run(r.key, JSON.stringify(value), now.toISOString()).changes) seeded.push(r.key);
      } catch (e) {
        skipped.push({ key: r.key, reason: e instanceof SettingsError ? e.message : String(e) });
      }
    }
    // mail on while phpBorg cannot send any would log a failed mail after every operation: the
    // switch starts off until SMTP works (keeper's own smtp configuration: switched on by hand)
    const pref = new Map(rows.map((r) => [r.key, r.value?.trim() ?? '']));
    const enabled = !pref.has('smtp.enabled') || ['1', 'true', 'yes', 'on'].includes(pref.get('smtp.enabled')!.toLowerCase());
    const smtpOn = enabled && !!pref.get('smtp.host');
    if (!smtpOn) {
      ledger.prepare('UPDATE settings SET value_json = ? WHERE key = ?').run(JSON.stringify(false), 'backup_notify_email');
    }
    put.run(SEEDED, JSON.stringify(now.toISOString()), now.toISOString());
  })();
  return { seeded, skipped };
}

/** Seeds from phpBorg once, if its database answers (true when it seeded now); a dead database leaves seeding for later. */
export async function ensureSeeded(
  ledger: Ledger,
  load: () => Promise<{ key: string; value: string | null }[]>,
  storagePath?: StoragePathPolicy,
): Promise<boolean> {
  if (isSeeded(ledger)) return false;
  let rows: { key: string; value: string | null }[];
  try {
    rows = await load();
  } catch {
    return false;
  }
  seedSettings(ledger, rows, new Date(), storagePath);
  return true;
}
