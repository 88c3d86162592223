// GET/PUT /api/phpborg-backup/settings (admin). The passphrase is write-only: GET shows only whether
// it is set and its fingerprint. A wrong value → 422 naming the key; nothing is changed.
import type { Context } from 'hono';
import type { AppEnv } from '../../runtime/bindings.ts';
import { bodyText, HttpError } from '../../runtime/errors.ts';
import { audit } from '../../state/audit.ts';
import { ensureSeeded, publicSettings, SettingsError, updateSettings, PASSPHRASE_KEY } from '../../state/settings.ts';
import { nextScheduledRun, settingsChanged } from '../../runtime/schedule.ts';
import { errorMessage } from '../../runtime/error-message.ts';
import { storagePolicy } from '../../runtime/storage-path.ts';
import { targetsView } from '../offsite/routes.ts';

async function view(c: Context<AppEnv>) {
  await ensureSeeded(c.env.ledger, () => c.env.phpborg.query<{ key: string; value: string | null }>('SELECT `key`, `value` FROM `settings`'), storagePolicy(c.env.config));
  const s = await publicSettings(c.env.ledger, c.env.config.paths.storage);
  const schedule = await nextScheduledRun(c.env).catch(() => null);
  return { ...s, next_run: schedule?.next_run ?? null, schedule };
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
