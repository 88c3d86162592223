// What an archive's .env may point the restore at. The .env inside an archive is whatever the person
// who made (or forged) it wrote; the restore drops and recreates that database and, as the MariaDB
// admin, creates or re-keys that account. MariaDB's own schemas and accounts must never be those.
import type mysql from 'mysql2/promise';
import type { PhpborgEnv } from './install.ts';

/** MariaDB's own schemas: dropping or loading one breaks the server itself. */
export const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys'];
/** Accounts MariaDB and the distributions use to run it. */
const SYSTEM_ACCOUNTS = ['root', 'mariadb.sys', 'mysql', 'debian-sys-maint'];

/** Why the database or account of `env` is one the restore must not touch, or null. */
export function databaseTargetProblem(env: Pick<PhpborgEnv, 'DB_NAME' | 'DB_USER'>, what = "the archive's .env"): string | null {
  const db = env.DB_NAME.trim().toLowerCase();
  const user = env.DB_USER.trim().toLowerCase();
  if (SYSTEM_SCHEMAS.includes(db)) return `${what} names DB_NAME=${env.DB_NAME}, one of MariaDB's own schemas (${SYSTEM_SCHEMAS.join(', ')}): refused`;
  if (SYSTEM_ACCOUNTS.includes(user) || user.startsWith('mysql.') || user.startsWith('mariadb.')) {
    return `${what} names DB_USER=${env.DB_USER}, a privileged or system MariaDB account: refused`;
  }
  if (user === '') return `${what} names no DB_USER: refused`;
  return null;
}

/** The DB_NAME / DB_USER the archive would switch the install to, compared with the live .env. */
export function databaseChange(live: PhpborgEnv | null, archive: PhpborgEnv | null): { key: 'DB_NAME' | 'DB_USER'; live: string; archive: string }[] {
  if (!live || !archive) return [];
  return (['DB_NAME', 'DB_USER'] as const).filter((k) => live[k] !== archive[k]).map((k) => ({ key: k, live: live[k], archive: archive[k] }));
}

/** The message that asks for the confirmation a change of database or account needs. */
export function databaseChangeMessage(changes: ReturnType<typeof databaseChange>): string {
  const what = changes.map((c) => `${c.key} ${c.live} → ${c.archive}`).join(', ');
  return `the archive's .env points at another database or account than the live one (${what}): confirm with --accept-db-change (API: "accept_db_change": true)`;
}

/** Password plugins keeper may set a password for; any other (unix_socket, gssapi, pam…) is left alone. */
const PASSWORD_PLUGINS = ['', 'mysql_native_password', 'ed25519', 'caching_sha2_password'];

/**
 * Asked as the MariaDB admin before anything is created or altered: why the account `user` must not
 * be created or altered for `hosts`, or null. An account with global privileges, or one that exists
 * under another host or logs in another way than by password, belongs to someone else.
 */
export async function accountProblem(c: mysql.Connection, user: string, hosts: string[]): Promise<string | null> {
  const [rows] = await c.query('SELECT User AS u, Host AS h FROM mysql.user WHERE User = ?', [user]);
  const found = rows as { u: string; h: string }[];
  for (const r of found) {
    if (!hosts.includes(r.h)) return `the MariaDB account ${user}@${r.h} exists under another host than ${hosts.join('/')}: it is left alone (refused)`;
    const [plug] = await c.query("SELECT COALESCE(JSON_VALUE(Priv, '$.plugin'), '') AS p FROM mysql.global_priv WHERE User = ? AND Host = ?", [user, r.h]);
    const plugin = String((plug as { p: string }[])[0]?.p ?? '');
    if (!PASSWORD_PLUGINS.includes(plugin)) return `the MariaDB account ${user}@${r.h} logs in with ${plugin}, not a password: it is left alone (refused)`;
    const [grants] = await c.query(`SHOW GRANTS FOR ${c.escape(user)}@${c.escape(r.h)}`);
    for (const g of grants as Record<string, string>[]) {
      const text = String(Object.values(g)[0] ?? '');
      if (/^GRANT\s+(?!USAGE\s+ON\b).*\bON\s+\*\.\*/i.test(text)) {
        return `the MariaDB account ${user}@${r.h} has global privileges: it is left alone (refused)`;
      }
    }
  }
  return null;
}
