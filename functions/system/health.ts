// GET /api/health (no auth) — runner, ledger, phpBorg database, Redis, storage dir writable:
// each {name, ok, status, latency_ms}, plus detail?|error? for an admin token. 200 when all pass, 503 otherwise.
import type { Context } from 'hono';
import { accessSync, constants, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AppEnv, Bindings } from '../../runtime/bindings.ts';
import { readEnv } from '../../runtime/install.ts';
import { verifyAdminToken } from '../../runtime/auth.ts';
import { probeHttp, probeRedis, timed, type Check } from '../../runtime/probes.ts';
import type { Ledger } from '../../state/ledger.ts';
import { schemaVersion } from '../../state/ledger.ts';
import { inconsistentOperation } from '../../state/operations.ts';
import { getSettings } from '../../state/settings.ts';
import { errorMessage } from '../../runtime/error-message.ts';
import { ownStorageDir } from '../../runtime/storage-path.ts';

const started = Date.now();

/** The storage dir: the backup_storage_path setting (state/settings.ts), else the configured path. */
export function storageDir(env: Pick<Bindings, 'config' | 'ledger'>): string {
  return ownStorageDir(getSettings(env.ledger, env.config.paths.storage).backup_storage_path || env.config.paths.storage);
}

/**
 * Whether an operation left the install half-changed with nothing to roll back to (its units are kept
 * stopped): failing until an operation (a restore, the emergency restore) puts a whole install back.
 */
export function installConsistency(ledger: Ledger): Promise<Check> {
  return timed('install', () => {
    const e = inconsistentOperation(ledger);
    if (e) throw new Error(`inconsistent since ${e.closed_at ?? e.opened_at} (${e.kind} job ${e.job_id ?? `operation #${e.id}`}): ${e.note ?? 'half-changed'}`);
    return 'consistent';
  });
}

export async function healthChecks(env: Bindings): Promise<Check[]> {
  return Promise.all([
    installConsistency(env.ledger),
    timed('runner', () => `up ${Math.round((Date.now() - started) / 1000)} s, node ${process.version}`),
    timed('ledger', () => `schema v${schemaVersion(env.ledger)}`),
    timed('database', async () => {
      const rows = await env.phpborg.query<{ v: string }>('SELECT VERSION() AS v');
      return String(rows[0]?.v ?? '');
    }),
    (async () => {
      try {
        const c = await probeRedis(readEnv(env.config));
        return c;
      } catch (e) {
        return { name: 'redis', ok: false, latency_ms: 0, error: errorMessage(e) };
      }
    })(),
    // phpBorg's own API: the install is not healthy while it answers 503
    probeHttp(env.config.phpborg_api.health_url),
    timed('storage', () => {
      const dir = storageDir(env);
      if (existsSync(dir)) {
        accessSync(dir, constants.W_OK);
        return `${dir} writable`;
      }
      // created 0700 at the first backup: its parent must let us
      accessSync(dirname(dir), constants.W_OK);
      return `${dir} will be created`;
    }),
  ]);
}

/** Whether the request carries a valid admin token (health itself needs none). */
async function isAdmin(c: Context<AppEnv>): Promise<boolean> {
  if (!c.req.header('authorization')) return false;
  return verifyAdminToken(c.env.config, c.req.header('authorization')).then(
    () => true,
    () => false,
  );
}

export async function healthHandler(c: Context<AppEnv>): Promise<Response> {
  // Public (behind phpBorg's nginx it faces the internet): without an admin token only names,
  // statuses and latencies; details and errors (paths, versions, DB user names) are for admins.
  const full = await isAdmin(c);
  const checks = (await healthChecks(c.env)).map(({ detail, error, ...x }) => ({
    ...x,
    status: x.ok ? 'ok' : 'error',
    ...(full ? { ...(detail !== undefined ? { detail } : {}), ...(error !== undefined ? { error } : {}) } : {}),
  }));
  const ok = checks.every((x) => x.ok);
  return c.json({ status: ok ? 'ok' : 'degraded', checks }, ok ? 200 : 503);
}
