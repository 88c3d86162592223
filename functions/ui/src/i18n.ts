// French by default, like phpBorg; the header switch changes it and it is remembered.
import { createI18n } from 'vue-i18n';
import { fr, stepsFr } from './locales/fr.ts';
import { en, stepsEn } from './locales/en.ts';
import type { Locale } from './lib/format.ts';

const KEY = 'keeper_locale';

function initial(): Locale {
  try {
    const saved = localStorage.getItem(KEY) ?? localStorage.getItem('locale');
    if (saved === 'en' || saved === 'fr') return saved;
  } catch {
    /* ignore */
  }
  return 'fr';
}

export const i18n = createI18n({
  legacy: false,
  locale: initial(),
  fallbackLocale: 'en',
  messages: { fr, en },
  missingWarn: false,
  // French: 0 and 1 take the singular
  pluralRules: { fr: (choice: number, choices: number) => (choices === 3 ? Math.min(choice, 2) : choice > 1 ? 1 : 0) },
  fallbackWarn: false,
});

export function currentLocale(): Locale {
  return i18n.global.locale.value as Locale;
}

export function setLocale(l: Locale): void {
  i18n.global.locale.value = l;
  document.documentElement.lang = l;
  try {
    localStorage.setItem(KEY, l);
  } catch {
    /* ignore */
  }
}

const steps: Record<Locale, Record<string, string>> = { fr: stepsFr, en: stepsEn };

/**
 * A job step in the chosen language: the step key's template with its params, else the English
 * message the server sent (a new step never shows as a raw key).
 */
export function stepLabel(key: string, message: string, params: Record<string, unknown> = {}): string {
  const table = steps[currentLocale()];
  const fill = (tpl: string) => tpl.replace(/\{(\w+)\}/g, (_, p: string) => (params[p] === undefined || params[p] === null ? '' : String(params[p])));
  if (table[key]) return fill(table[key]);
  // a backup inside another operation (restore.safety_backup.dump): "<step> — <backup sub-step>"
  const parts = key.split('.');
  if (parts.length > 2) {
    const group = table[parts.slice(0, 2).join('.')];
    const sub = table[`backup.${parts.slice(2).join('.')}`] ?? table[parts.slice(1).join('.')];
    if (group && sub) return `${group} — ${fill(sub)}`;
    if (group) return group;
  }
  return message || key;
}
