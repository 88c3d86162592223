// The sandbox's private MariaDB: its own datadir, socket and port under DIR, root over the socket
// without a password, the app user's credentials in .env.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runOk, safeEnv } from '../../runtime/exec.ts';
import type { Layout } from './layout.ts';
import type { UnitSpec } from './meta.ts';

// small and quick: a sandbox holds megabytes, not gigabytes
const TUNING = ['--innodb-buffer-pool-size=32M', '--innodb-log-file-size=16M', '--skip-name-resolve', '--innodb-flush-log-at-trx-commit=2', '--performance-schema=OFF'];

export async function initDatadir(L: Layout): Promise<void> {
  mkdirSync(L.mysqlData, { recursive: true });
  mkdirSync(join(L.dir, 'run/mysqld'), { recursive: true });
  mkdirSync(tmpDir(L), { recursive: true });
  // its own tmpdir: sandboxes installed side by side must not share /tmp's temporary tables
  await runOk('mariadb-install-db', ['--no-defaults', `--datadir=${L.mysqlData}`, '--user=root', '--auth-root-authentication-method=normal', '--skip-test-db', '--innodb-log-file-size=16M'], { env: safeEnv({ TMPDIR: tmpDir(L) }) });
}

function tmpDir(L: Layout): string {
  return join(L.dir, 'run/mysqld/tmp');
}

export function mariadbUnit(L: Layout, port: number): UnitSpec {
  return {
    argv: [
      'mariadbd',
      '--no-defaults',
      '--user=root',
      `--datadir=${L.mysqlData}`,
      `--socket=${L.mysqlSocket}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--pid-file=${join(L.dir, 'run/mysqld/mysqld.pid')}`,
      `--log-error=${join(L.log, 'mariadb-error.log')}`,
      `--tmpdir=${tmpDir(L)}`,
      ...TUNING,
    ],
    ready: { socket: L.mysqlSocket, tcp: port },
    stop_timeout_s: 60,
  };
}

/** Runs SQL as root over the private socket (the mariadb client reads it from stdin). */
export async function rootSql(L: Layout, sql: string, database?: string): Promise<string> {
  return runOk('mariadb', ['--no-defaults', `--socket=${L.mysqlSocket}`, '--user=root', '--batch', ...(database ? [database] : [])], { input: sql, env: safeEnv() });
}

export function bootstrapSql(db: { name: string; user: string; password: string }): string {
  const pw = db.password.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
  return `
DELETE FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host <> 'localhost');
CREATE DATABASE IF NOT EXISTS \`${db.name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '${db.user}'@'127.0.0.1' IDENTIFIED BY '${pw}';
CREATE USER IF NOT EXISTS '${db.user}'@'localhost' IDENTIFIED BY '${pw}';
GRANT ALL PRIVILEGES ON \`${db.name}\`.* TO '${db.user}'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`${db.name}\`.* TO '${db.user}'@'localhost';
FLUSH PRIVILEGES;
`;
}
