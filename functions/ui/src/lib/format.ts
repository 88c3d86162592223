// Dates, sizes and durations in the chosen locale.
export type Locale = 'fr' | 'en';

const tags: Record<Locale, string> = { fr: 'fr-FR', en: 'en-GB' };
const units: Record<Locale, string[]> = {
  fr: ['o', 'Ko', 'Mo', 'Go', 'To'],
  en: ['B', 'KB', 'MB', 'GB', 'TB'],
};

export function formatSize(bytes: number | null | undefined, locale: Locale): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—';
  let n = bytes;
  let i = 0;
  while (n >= 1024 && i < units[locale].length - 1) {
    n /= 1024;
    i++;
  }
  const digits = i === 0 ? 0 : n < 10 ? 2 : n < 100 ? 1 : 0;
  return `${new Intl.NumberFormat(tags[locale], { maximumFractionDigits: digits }).format(n)} ${units[locale][i]}`;
}

export function formatNumber(n: number | null | undefined, locale: Locale): string {
  if (n === null || n === undefined) return '—';
  return new Intl.NumberFormat(tags[locale]).format(n);
}

/** SQLite keeps "YYYY-MM-DD HH:MM:SS" (UTC) in places; ISO elsewhere. Both mean UTC. */
export function parseDate(value: string | number | null | undefined): Date | null {
  if (value === null || value === undefined || value === '') return null;
  if (typeof value === 'number') return new Date(value);
  let s = value.trim();
  if (/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s)) s = s.replace(' ', 'T') + 'Z';
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** In the browser's time zone, or in `timeZone` (e.g. the install's, for the schedule) when valid. */
export function formatDate(value: string | number | null | undefined, locale: Locale, timeZone?: string | null): string {
  const d = parseDate(value);
  if (!d) return '—';
  try {
    return new Intl.DateTimeFormat(tags[locale], { dateStyle: 'medium', timeStyle: 'short', timeZone: timeZone ?? undefined }).format(d);
  } catch {
    return new Intl.DateTimeFormat(tags[locale], { dateStyle: 'medium', timeStyle: 'short' }).format(d);
  }
}

/** The browser's own zone. */
export function browserZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** The UTC offset of `timeZone` at `d`, in minutes. */
function offsetAt(d: Date, timeZone: string): number {
  try {
    const parts = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(d);
    const n = (t: string) => Number(parts.find((p) => p.type === t)?.value);
    return Math.round((Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'), n('second')) - Math.floor(d.getTime() / 1000) * 1000) / 60_000);
  } catch {
    return 0;
  }
}

/**
 * A time as the pages show it: in the install's zone, labelled with that zone's short name
 * ("24 janv. 2025, 15:30 UTC+1"); `other` is the same time in the browser's zone when its offset
 * differs at that moment (for a tooltip), else ''.
 */
export function formatZoned(value: string | number | null | undefined, locale: Locale, installZone: string | null | undefined): { text: string; other: string } {
  const d = parseDate(value);
  if (!d) return { text: '—', other: '' };
  const zone = installZone || browserZone();
  const fmt = (timeZone: string) => {
    try {
      return new Intl.DateTimeFormat(tags[locale], { dateStyle: 'medium', timeStyle: 'short', timeZone }).format(d) + ' ' + zoneName(d, locale, timeZone);
    } catch {
      return formatDate(d.getTime(), locale);
    }
  };
  const other = browserZone();
  return { text: fmt(zone), other: offsetAt(d, other) !== offsetAt(d, zone) ? fmt(other) : '' };
}

function zoneName(d: Date, locale: Locale, timeZone: string): string {
  try {
    return new Intl.DateTimeFormat(tags[locale], { timeZone, timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? timeZone;
  } catch {
    return timeZone;
  }
}

export function formatDuration(ms: number | null | undefined, locale: Locale): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  const nf = (n: number, d = 1) => new Intl.NumberFormat(tags[locale], { maximumFractionDigits: d }).format(n);
  if (ms < 1000) return `${nf(ms, 0)} ms`;
  if (ms < 60_000) return `${nf(ms / 1000)} s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return `${m} min ${s} s`;
}

export function shortHash(h: string | null | undefined): string {
  return h ? h.slice(0, 7) : '—';
}
