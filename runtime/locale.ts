// What phpBorg's own settings say about language, timezone and mail (its `settings` table), with the
// fallbacks: app.timezone, else APP_TIMEZONE in .env, else the system's zone;
// app.language, else French (phpBorg's default).
import * as v from 'valibot';
import type { KeeperConfig } from './config.ts';
import type { PhpborgDb } from './bindings.ts';
import { readEnv } from './install.ts';
import { errorMessage } from './error-message.ts';

/** phpBorg settings keys keeper reads (never writes). */
export const PHPBORG_PREF_KEYS = [
  'app.language',
  'app.timezone',
  'app.url',
  'notification.email',
  'smtp.enabled',
  'smtp.host',
  'smtp.port',
  'smtp.username',
  'smtp.password',
  'smtp.encryption',
  'smtp.from_email',
  'smtp.from_name',
] as const;

const RowSchema = v.object({ key: v.string(), value: v.nullable(v.union([v.string(), v.number()])) });

/** key → value of phpBorg's settings rows keeper cares about; throws when the database is down. */
export async function readPhpborgPrefs(db: PhpborgDb): Promise<Map<string, string>> {
  const marks = PHPBORG_PREF_KEYS.map(() => '?').join(', ');
  const rows = await db.query('SELECT `key`, `value` FROM settings WHERE `key` IN (' + marks + ')', [...PHPBORG_PREF_KEYS]);
  const out = new Map<string, string>();
  for (const r of rows) {
    const p = v.safeParse(RowSchema, r);
    if (p.success && p.output.value !== null) out.set(p.output.key, String(p.output.value));
  }
  return out;
}

export function isValidTimezone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export function systemTimezone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** app.timezone (phpBorg DB) → APP_TIMEZONE (.env) → the system's; invalid names are skipped. */
export function resolveTimezone(prefs: Map<string, string> | null, config: KeeperConfig): { timezone: string; source: 'phpborg' | 'env' | 'system' } {
  const fromDb = prefs?.get('app.timezone')?.trim();
  if (fromDb && isValidTimezone(fromDb)) return { timezone: fromDb, source: 'phpborg' };
  try {
    const fromEnv = readEnv(config).APP_TIMEZONE?.trim();
    if (fromEnv && isValidTimezone(fromEnv)) return { timezone: fromEnv, source: 'env' };
  } catch {
    /* no readable .env: fall through */
  }
  return { timezone: systemTimezone(), source: 'system' };
}

/** The languages keeper writes in (mails, kit): phpBorg's French and English. */
export type Lang = 'fr' | 'en';

/** Any phpBorg language setting ("en", "en_US", "fr"…) → a language keeper writes; French otherwise. */
export function pickLang(value: unknown): Lang {
  return typeof value === 'string' && value.toLowerCase().startsWith('en') ? 'en' : 'fr';
}

export function resolveLanguage(prefs: Map<string, string> | null): Lang {
  return pickLang(prefs?.get('app.language') ?? 'fr');
}

export interface InstallPrefs {
  prefs: Map<string, string> | null;
  timezone: string;
  language: Lang;
  /** why phpBorg's settings could not be read, when they could not */
  dbError: string | null;
}

/** Reads everything once; a dead database still yields usable timezone and language. */
export async function installPrefs(b: { config: KeeperConfig; phpborg: PhpborgDb }): Promise<InstallPrefs> {
  let prefs: Map<string, string> | null = null;
  let dbError: string | null = null;
  try {
    prefs = await readPhpborgPrefs(b.phpborg);
  } catch (e) {
    dbError = errorMessage(e);
  }
  return { prefs, timezone: resolveTimezone(prefs, b.config).timezone, language: resolveLanguage(prefs), dbError };
}
