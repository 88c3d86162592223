// MariaDB administration for the emergency and bare-metal restores: reach the server as its admin
// (root over config.mariadb_admin.socket: unix-socket auth, no password anywhere), start it through
// the service manager when it is down, and recreate phpBorg's database and user from a .env (the
// BACKUP's own: no credential is ever written in keeper's code or configuration).
import mysql from 'mysql2/promise';
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
