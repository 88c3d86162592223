// Formatting bound to the current UI language (re-renders when the header switch changes it).
import { useI18n } from 'vue-i18n';
import { formatDate, formatDuration, formatNumber, formatSize, type Locale } from './format.ts';

export function useFormat() {
  const { locale } = useI18n();
  const l = () => locale.value as Locale;
  return {
    size: (b: number | null | undefined) => formatSize(b, l()),
    date: (d: string | number | null | undefined, timeZone?: string | null) => formatDate(d, l(), timeZone),
    number: (n: number | null | undefined) => formatNumber(n, l()),
    duration: (ms: number | null | undefined) => formatDuration(ms, l()),
  };
}
