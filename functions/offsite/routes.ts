// Off-site routes (admin): the targets as configured (never a secret: no key, no rclone config
// content) with their last success; "copy now" for one backup; "test connection" for one target.
import type { Context } from 'hono';
import * as v from 'valibot';
import type { AppEnv } from '../../runtime/bindings.ts';
import type { KeeperConfig, OffsiteTarget } from '../../runtime/config.ts';
import { HttpError, jsonBody } from '../../runtime/errors.ts';
import { describeTarget } from '../../runtime/offsite.ts';
import type { Ledger } from '../../state/ledger.ts';
import { copiesOf, targetSummary, type OffsiteCopy } from '../../state/offsite.ts';
import { getSettings } from '../../state/settings.ts';
import { startJob } from '../jobs/start.ts';
import { backupParam } from '../backup/catalog.ts';
import { findTarget } from './copy.ts';

/** A target as settings, status and the UI show it. */
export function targetView(t: OffsiteTarget, ledger: Ledger, keepDefault: number) {
  const common = { name: t.name, kind: t.kind, where: describeTarget(t), enabled: t.enabled, keep: t.keep ?? keepDefault, keep_default: t.keep === null, bwlimit_kbps: t.bwlimit_kbps };
  const place =
    t.kind === 'sftp'
      ? { host: t.host, port: t.port, user: t.user, path: t.path, key_file: t.key_file, known_hosts: t.known_hosts }
      : { remote: t.remote, config_file: t.config_file };
  return { ...common, ...place, ...targetSummary(ledger, t.name) };
}

export function targetsView(config: KeeperConfig, ledger: Ledger) {
  const keep = getSettings(ledger, config.paths.storage).backup_retention_count;
  return config.offsite.map((t) => targetView(t, ledger, keep));
}

/** The off-site state of a backup per configured target (a target without a row: not copied yet). */
export type OffsiteState = Pick<OffsiteCopy, 'target' | 'status' | 'error' | 'error_code' | 'attempts' | 'next_attempt_at' | 'verified_at' | 'removed_at' | 'method'>;

export function offsiteStates(config: KeeperConfig, ledger: Ledger, ids: number[]): Map<number, OffsiteState[]> {
  const rows = copiesOf(ledger, ids);
  const out = new Map<number, OffsiteState[]>();
  for (const id of ids) {
    const mine = rows.get(id) ?? [];
    out.set(
      id,
      mine.map(({ target, status, error, error_code, attempts, next_attempt_at, verified_at, removed_at, method }) => ({ target, status, error, error_code, attempts, next_attempt_at, verified_at, removed_at, method })),
    );
  }
  return out;
}

/** GET /api/phpborg-backup/offsite */
export function targetsHandler(c: Context<AppEnv>): Response {
  return c.json({ targets: targetsView(c.env.config, c.env.ledger) });
}

const PushBody = v.strictObject({ target: v.optional(v.nullable(v.pipe(v.string('expected a target name'), v.maxLength(64)))) });

/** POST /api/phpborg-backup/:id/offsite {target?} → 202 job offsite.push */
export async function pushHandler(c: Context<AppEnv>): Promise<Response> {
  const row = backupParam(c);
  const body = await jsonBody(c, PushBody);
  if (body.target && !findTarget(c.env.config, body.target)) throw new HttpError(422, 'unknown_target', `target: no off-site target named ${JSON.stringify(body.target)}`, { fields: ['target'] });
  if (row.status !== 'succeeded') throw new HttpError(409, 'not_finished', `backup ${row.id} is ${row.status}: only a finished backup is copied`);
  return startJob(c, 'offsite.push', { backup_id: row.id, target: body.target ?? null });
}

/** POST /api/phpborg-backup/offsite/:name/test → 202 job offsite.test */
export async function testHandler(c: Context<AppEnv>): Promise<Response> {
  const name = c.req.param('name') ?? '';
  if (!findTarget(c.env.config, name)) throw new HttpError(404, 'unknown_target', `no off-site target named ${JSON.stringify(name)}`);
  return startJob(c, 'offsite.test', { target: name });
}
