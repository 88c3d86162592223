// MariaDB administration for the emergency and bare-metal restores and the restore drill: reach the
// server as its admin (root over config.mariadb_admin.socket: unix-socket auth, no password anywhere),
// start it through the service manager when it is down, recreate phpBorg's database and user from a
// .env (the BACKUP's own: no credential is ever written in keeper's code or configuration), and make,
// fill, count and drop the drill's scratch databases.
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { safeEnv } from './exec.ts';
import { withKeeperTemp } from './temp.ts';
import type { KeeperConfig } from './config.ts';
import type { PhpborgEnv } from './install.ts';
import { probeDatabase } from './probes.ts';
import { serviceManager } from './service-manager.ts';
import { errorMessage } from './error-message.ts';
import { accountProblem, databaseTargetProblem } from './db-guard.ts';

type Log = (message: string) => void;

/** A connection as the MariaDB admin (socket when configured, else host/port), no database selected. */
export async function adminConnection(config: KeeperConfig): Promise<mysql.Connection> {
  const a = config.mariadb_admin;
  return mysql.createConnection({
    user: a.user,
    ...(a.socket ? { socketPath: a.socket } : { host: a.host, port: a.port }),
    connectTimeout: 3000,
    multipleStatements: false,
  });
}

/** Whether the admin can connect; the error message when not. */
export async function adminReachable(config: KeeperConfig): Promise<{ ok: true } | { ok: false; error: string }> {
  try {
    const c = await adminConnection(config);
    await c.end().catch(() => {});
    return { ok: true };
  } catch (e) {
    return { ok: false, error: errorMessage(e) };
  }
}

/**
 * Makes sure the MariaDB server answers: when neither the admin nor the app user (`env`, optional) can
 * connect, starts config.mariadb_admin.unit through the service manager and waits (bounded) for it.
 * Returns what it did: 'running' (nothing to do) or 'started'.
 */
export async function ensureServerUp(config: KeeperConfig, env: PhpborgEnv | null, log: Log = () => {}, timeoutMs = 60_000): Promise<'running' | 'started'> {
  const first = await adminReachable(config);
  if (first.ok) return 'running';
  if (env && (await probeDatabase(env)).ok) return 'running';
  const unit = config.mariadb_admin.unit;
  log(`MariaDB does not answer (${first.error}): starting ${unit} through the service manager`);
  await serviceManager(config).start([unit]);
  const deadline = Date.now() + timeoutMs;
  let last = first.error;
  while (Date.now() < deadline) {
    const r = await adminReachable(config);
    if (r.ok) return 'started';
    last = r.error;
    await new Promise((res) => setTimeout(res, 250));
  }
  throw new Error(`MariaDB was started (${unit}) but does not answer after ${Math.round(timeoutMs / 1000)} s: ${last}`);
}

/** Hosts an app user needs: the local ones for a local server, any host ('%') otherwise. */
export function userHosts(env: PhpborgEnv): string[] {
  const local = env.DB_SOCKET || ['127.0.0.1', 'localhost', '::1'].includes(env.DB_HOST);
  return local ? ['localhost', '127.0.0.1'] : ['%'];
}

export interface EnsureDatabaseResult {
  server: 'running' | 'started';
  database_created: boolean;
  user_created: boolean;
  /** the user existed but the backup's password did not log in: it was set again */
  password_reset: boolean;
}

/**
 * Makes the database and its user of `env` (the backup's .env) exist and work: starts MariaDB when down;
 * if the app user cannot log in to its database, connects as the admin and CREATE DATABASE IF NOT EXISTS,
 * CREATE USER IF NOT EXISTS (each local host), sets the password from `env`, GRANT ALL on the database.
 * The password goes to the server as a bound parameter over the admin's socket: never argv, never a file.
 */
export async function ensureDatabaseAndUser(config: KeeperConfig, env: PhpborgEnv, log: Log = () => {}): Promise<EnsureDatabaseResult> {
  const named = databaseTargetProblem(env);
  if (named) throw new Error(named);
  const server = await ensureServerUp(config, env, log);
  const result: EnsureDatabaseResult = { server, database_created: false, user_created: false, password_reset: false };
  const probe = await probeDatabase(env);
  if (probe.ok) return result;
  log(`the backup's credentials do not open ${env.DB_NAME} (${probe.error}): recreating it as the MariaDB admin`);
  let c: mysql.Connection;
  try {
    c = await adminConnection(config);
  } catch (e) {
    throw new Error(
      `cannot connect to MariaDB as ${config.mariadb_admin.user}` +
        `${config.mariadb_admin.socket ? ` over ${config.mariadb_admin.socket}` : ''} to recreate the database: ${errorMessage(e)}` +
        ' (set mariadb_admin in the keeper configuration)',
    );
  }
  try {
    // before anything is created or altered: the account must be phpBorg's, or not exist
    const refused = await accountProblem(c, env.DB_USER, userHosts(env));
    if (refused) throw new Error(refused);
    const [dbs] = await c.query('SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [env.DB_NAME]);
    if ((dbs as unknown[]).length === 0) {
      await c.query(`CREATE DATABASE ${c.escapeId(env.DB_NAME)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
      result.database_created = true;
      log(`created database ${env.DB_NAME}`);
    }
    for (const host of userHosts(env)) {
      const [users] = await c.query('SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?', [env.DB_USER, host]);
      const account = `${c.escape(env.DB_USER)}@${c.escape(host)}`;
      if ((users as unknown[]).length === 0) {
        await c.query(`CREATE USER ${account} IDENTIFIED BY ?`, [env.DB_PASSWORD]);
        result.user_created = true;
        log(`created user ${env.DB_USER}@${host}`);
      } else {
        await c.query(`ALTER USER ${account} IDENTIFIED BY ?`, [env.DB_PASSWORD]);
        result.password_reset = true;
      }
      await c.query(`GRANT ALL PRIVILEGES ON ${c.escapeId(env.DB_NAME)}.* TO ${account}`);
    }
    await c.query('FLUSH PRIVILEGES');
  } finally {
    await c.end().catch(() => {});
  }
  const again = await probeDatabase(env);
  if (!again.ok) throw new Error(`${env.DB_USER} still cannot open ${env.DB_NAME} after recreating it: ${again.error}`);
  return result;
}

// ── scratch databases (the restore drill) ──────────────────────────────────────────────────────

/** Every scratch database keeper makes starts with this; nothing else is ever dropped by name. */
export const SCRATCH_DB_PREFIX = 'keeper_drill_';
const SCRATCH_DB_RE = /^keeper_drill_[a-z0-9_]{1,48}$/;

/** A fresh scratch database name: unique per run, never one an install would use. */
export function scratchDatabaseName(tag: string): string {
  const clean = tag.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 32);
  return `${SCRATCH_DB_PREFIX}${clean}_${Math.random().toString(36).slice(2, 8)}`;
}

function assertScratch(name: string): void {
  // the name comes back from the journal on recovery: a damaged entry must never reach a live database
  if (!SCRATCH_DB_RE.test(name)) throw new Error(`refusing to touch ${JSON.stringify(name)}: not a keeper scratch database`);
}

/** Creates the scratch database as the admin; refuses a name that already exists. */
export async function createScratchDatabase(config: KeeperConfig, name: string): Promise<void> {
  assertScratch(name);
  const c = await adminConnection(config);
  try {
    await c.query(`CREATE DATABASE ${c.escapeId(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } finally {
    await c.end().catch(() => {});
  }
}

/** Drops the scratch database as the admin (gone already is fine). */
export async function dropScratchDatabase(config: KeeperConfig, name: string): Promise<void> {
  assertScratch(name);
  const c = await adminConnection(config);
  try {
    await c.query(`DROP DATABASE IF EXISTS ${c.escapeId(name)}`);
  } finally {
    await c.end().catch(() => {});
  }
}

/** The scratch databases that exist now (tests, and a person checking that nothing was left behind). */
export async function scratchDatabases(config: KeeperConfig): Promise<string[]> {
  const c = await adminConnection(config);
  try {
    const [rows] = await c.query('SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?', [`${SCRATCH_DB_PREFIX}%`]);
    return (rows as { n: string }[]).map((r) => r.n);
  } finally {
    await c.end().catch(() => {});
  }
}

/** The [client] options of the admin account: socket (or host/port), no password (unix-socket auth). */
function adminOptions(config: KeeperConfig): string {
  const a = config.mariadb_admin;
  const q = (s: string) => '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
  const lines = ['[client]', `user=${q(a.user)}`];
  if (a.socket) lines.push(`socket=${q(a.socket)}`);
  else lines.push(`host=${q(a.host)}`, `port=${a.port}`, 'protocol=TCP');
  return lines.join('\n') + '\n';
}

/**
 * Imports `sqlFile` into the scratch database `name` as the admin, with `mariadb` (its stdin is the
 * file). The client runs at the caller's CPU priority (it inherits the helper's nice value).
 */
export async function importIntoScratch(config: KeeperConfig, name: string, sqlFile: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
  assertScratch(name);
  await withKeeperTemp('my', async (dir) => {
    const defaults = join(dir, 'admin.cnf');
    await writeFile(defaults, adminOptions(config), { mode: 0o600, flag: 'wx' });
    const child = spawn('mariadb', [`--defaults-extra-file=${defaults}`, '--batch', '--max-allowed-packet=1G', name], {
      env: safeEnv(),
      stdio: ['pipe', 'ignore', 'pipe'],
      signal: opts.signal,
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => {
      if (stderr.length < 64 * 1024) stderr += b.toString('utf8');
    });
    const exited = new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve, reject) => {
      child.on('error', (e) => reject(new Error(`cannot run mariadb: ${e.message}`)));
      child.on('close', (code, sig) => resolve({ code, sig }));
    });
    const input = createReadStream(sqlFile);
    input.on('error', () => child.kill('SIGTERM'));
    child.stdin.on('error', () => {}); // an early exit is reported by the exit status
    input.pipe(child.stdin);
    const { code, sig } = await exited;
    if (code !== 0) {
      const why = stderr.trim().split('\n').filter(Boolean).slice(-3).join(' | ') || `exit ${code ?? sig}`;
      throw new Error(`database import failed: ${why}`);
    }
  }, config.paths.state);
}

/** Exact row count of every base table of the scratch database `name`. */
export async function scratchRowCounts(config: KeeperConfig, name: string): Promise<Record<string, number>> {
  assertScratch(name);
  const c = await adminConnection(config);
  try {
    const [tables] = await c.query(
      "SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
      [name],
    );
    const out: Record<string, number> = {};
    for (const { t } of tables as { t: string }[]) {
      const [rows] = await c.query(`SELECT COUNT(*) AS n FROM ${c.escapeId(name)}.${c.escapeId(t)}`);
      out[t] = Number((rows as { n: number | string }[])[0].n);
    }
    return out;
  } finally {
    await c.end().catch(() => {});
  }
}
