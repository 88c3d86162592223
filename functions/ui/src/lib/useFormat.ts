// Formatting bound to the current UI language (re-renders when the header switch changes it).
import { useI18n } from 'vue-i18n';
import { formatDate, formatDuration, formatNumber, formatSize, formatZoned, type Locale } from './format.ts';
import { session } from './session.ts';

export function useFormat() {
  const { locale } = useI18n();
  const l = () => locale.value as Locale;
  return {
    size: (b: number | null | undefined) => formatSize(b, l()),
    date: (d: string | number | null | undefined, timeZone?: string | null) => formatDate(d, l(), timeZone),
    /** in the install's zone, labelled; `other` = the browser's zone when it differs (tooltip) */
    when: (d: string | number | null | undefined) => formatZoned(d, l(), session.timezone),
    number: (n: number | null | undefined) => formatNumber(n, l()),
    duration: (ms: number | null | undefined) => formatDuration(ms, l()),
  };
}
