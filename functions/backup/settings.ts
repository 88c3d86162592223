// GET/PUT /api/phpborg-backup/settings (admin). The passphrase is write-only: GET shows only whether
// it is set and its fingerprint. A wrong value → 422 naming the key; nothing is changed.
import type { Context } from 'hono';
import * as v from 'valibot';
import { listBackups, usedBy } from '../../state/catalog.ts';
import { planRetention } from './remove.ts';
import type { AppEnv } from '../../runtime/bindings.ts';
import { bodyText, HttpError } from '../../runtime/errors.ts';
import { audit } from '../../state/audit.ts';
import { ensureSeeded, publicSettings, SettingsError, updateSettings, PASSPHRASE_KEY } from '../../state/settings.ts';
import { nextScheduledRun, settingsChanged } from '../../runtime/schedule.ts';
import { errorMessage } from '../../runtime/error-message.ts';
import { storagePolicy } from '../../runtime/storage-path.ts';
import { targetsView } from '../offsite/routes.ts';
import { installPrefs } from '../../runtime/locale.ts';
import { resolveSmtp } from '../../runtime/mailer.ts';
import { appSecret } from '../../runtime/auth.ts';

async function view(c: Context<AppEnv>) {
  await ensureSeeded(c.env.ledger, () => c.env.phpborg.query<{ key: string; value: string | null }>('SELECT `key`, `value` FROM `settings`'), storagePolicy(c.env.config));
  const s = await publicSettings(c.env.ledger, c.env.config.paths.storage);
  const schedule = await nextScheduledRun(c.env).catch(() => null);
  // whether a notification could be sent now: the pages say why not next to the switch
  const p = await installPrefs(c.env);
  const r = resolveSmtp(c.env.config, p.prefs, () => appSecret(c.env.config));
  const smtp = r.ok ? { ok: true as const, source: r.smtp.source } : { ok: false as const, code: r.code, reason: r.reason };
  return { ...s, next_run: schedule?.next_run ?? null, schedule, smtp };
}

export async function getSettingsHandler(c: Context<AppEnv>): Promise<Response> {
  // the off-site targets come from keeper.json, not from these settings: shown, never written here
  return c.json({ ...(await view(c)), offsite_targets: targetsView(c.env.config, c.env.ledger) });
}

export async function putSettingsHandler(c: Context<AppEnv>): Promise<Response> {
  const text = await bodyText(c);
  let body: unknown;
  try {
    body = JSON.parse(text || '{}');
  } catch (e) {
    throw new HttpError(400, 'invalid_json', `the request body is not valid JSON: ${errorMessage(e)}`);
  }
  await ensureSeeded(c.env.ledger, () => c.env.phpborg.query<{ key: string; value: string | null }>('SELECT `key`, `value` FROM `settings`'), storagePolicy(c.env.config));
  let changed: string[];
  try {
    changed = updateSettings(c.env.ledger, c.env.config.paths.storage, body, c.env.clock.now(), storagePolicy(c.env.config));
  } catch (e) {
    if (e instanceof SettingsError) {
      audit(c.env.ledger, { actor: c.var.actor, action: 'settings.update', target: e.key, outcome: 'rejected', details: { error: e.message } }, c.env.clock.now());
      throw new HttpError(422, 'invalid_setting', e.message, { key: e.key, fields: [e.key] });
    }
    throw e;
  }
  if (changed.length) {
    audit(c.env.ledger, { actor: c.var.actor, action: 'settings.update', target: changed.join(','), outcome: 'succeeded', details: { changed } }, c.env.clock.now());
    if (changed.some((k) => k.startsWith('backup_scheduled_'))) await settingsChanged().catch(() => {});
  }
  return c.json({ ...(await view(c)), changed: changed.map((k) => (k === PASSPHRASE_KEY ? PASSPHRASE_KEY : k)) });
}

const Keep = v.object({ keep: v.pipe(v.string(), v.regex(/^\d{1,2}$/, 'expected a whole number between 1 and 50'), v.transform(Number), v.integer(), v.minValue(1), v.maxValue(50)) });

/**
 * GET /api/phpborg-backup/settings/retention-preview?keep=N: the backups a retention of N would
 * delete at the next backup, so lowering it is never a surprise. Changes nothing.
 */
export function retentionPreviewHandler(c: Context<AppEnv>): Response {
  const q = v.safeParse(Keep, { keep: c.req.query('keep') ?? '' });
  if (!q.success) throw new HttpError(422, 'invalid_input', `keep: ${q.issues[0].message}`, { fields: ['keep'] });
  const plan = planRetention(listBackups(c.env.ledger), q.output.keep, (id) => usedBy(c.env.ledger, id) !== null);
  return c.json({
    keep: q.output.keep,
    delete: plan.delete.map((b) => ({ id: b.id, filename: b.filename, backup_type: b.backup_type, created_at: b.created_at, size_bytes: b.size_bytes })),
  });
}
