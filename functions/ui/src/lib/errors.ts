// Errors in the reader's language: the server's `code` (and parameters) pick a sentence of the
// locale; the server's own text, English and technical, is kept only as a detail under it.
import { ApiError } from './api.ts';
import { errorMessage } from '../../../../runtime/error-message.ts';

export interface Explained {
  /** the sentence in the UI's language */
  text: string;
  /** the server's (or the browser's) own words, when they add something */
  detail: string;
}

type T = (key: string, params?: Record<string, unknown>) => string;
type Te = (key: string) => boolean;

/** The code of an error from the API, a job, or the browser. */
export function errorCode(e: unknown): string {
  if (e instanceof ApiError) return e.code;
  if (e && typeof e === 'object' && typeof (e as { code?: unknown }).code === 'string') return (e as { code: string }).code;
  return '';
}

/**
 * `errors.<code>` when the locale has it (a test mail's SMTP problem is more precise than
 * mail_failed: `errors.<reason_code>` first), else `fallback` (or a generic sentence).
 */
export function explainError(e: unknown, t: T, te: Te, fallback?: string): Explained {
  if (e === null || e === undefined || e === '') return { text: '', detail: '' };
  // a sentence the page already wrote in the reader's language
  if (typeof e === 'string') return { text: e, detail: '' };
  const code = errorCode(e);
  const body = e instanceof ApiError ? e.body : e && typeof e === 'object' ? (e as Record<string, unknown>) : {};
  const details = (body.details && typeof body.details === 'object' ? body.details : {}) as Record<string, unknown>;
  const reason = typeof body.reason_code === 'string' ? body.reason_code : typeof details.reason_code === 'string' ? details.reason_code : '';
  const detail = e instanceof Error || (e && typeof (e as { message?: unknown }).message === 'string') ? String((e as { message: string }).message) : errorMessage(e);
  const params = { ...details, ...body } as Record<string, unknown>;
  for (const k of [reason, code]) {
    if (k && te(`errors.${k}`)) return { text: t(`errors.${k}`, params), detail };
  }
  return { text: fallback ?? t('errors.generic'), detail };
}
