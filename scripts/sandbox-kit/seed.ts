// The rows a lived-in phpBorg holds beyond what its installer and migrations seed: users, servers
// (without created_at, as at the installed version), storage pool, repositories, archives (grown with
// --size), jobs and one older self-backup row.
import { createCipheriv, createHash, randomBytes, scryptSync } from 'node:crypto';
import { escape } from 'mysql2';

/** phpBorg's settings encryption: base64(IV ‖ AES-256-CBC(value)), key = SHA-256(APP_SECRET). */
export function encryptSetting(value: string, appSecret: string): string {
  const key = createHash('sha256').update(appSecret).digest();
  const iv = randomBytes(16);
  const c = createCipheriv('aes-256-cbc', key, iv);
  return Buffer.concat([iv, c.update(value, 'utf8'), c.final()]).toString('base64');
}

/** what the API stand-in verifies: scrypt$<salt hex>$<key hex> (phpBorg itself stores argon2id) */
export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  return `scrypt$${salt.toString('hex')}$${scryptSync(password, salt, 32).toString('hex')}`;
}

export interface SeedInput {
  /** the Borg pool (DIR/opt/backups) */
  pool: string;
  /** the phpborg user's SSH dir */
  sshDir: string;
  servers: string[];
  admin: { username: string; email: string; password: string };
  user: { username: string; email: string; password: string };
  archives: number;
}

/** about how many bytes one archives row adds to a dump */
export const ARCHIVE_ROW_BYTES = 210;

export function seedSql(s: SeedInput): string {
  const sql: string[] = ['SET NAMES utf8mb4;', 'START TRANSACTION;'];
  // what an admin set up in the UI after the install
  sql.push(`UPDATE settings SET value = 'admin@phpborg.local' WHERE \`key\` = 'notification.email';`);
  sql.push(
    'INSERT INTO users (id, username, password, email, roles, active, created_at) VALUES\n' +
      [
        `(1, ${escape(s.admin.username)}, ${escape(hashPassword(s.admin.password))}, ${escape(s.admin.email)}, '["ROLE_ADMIN"]', 1, NOW() - INTERVAL 400 DAY)`,
        `(2, ${escape(s.user.username)}, ${escape(hashPassword(s.user.password))}, ${escape(s.user.email)}, '["ROLE_USER"]', 1, NOW() - INTERVAL 120 DAY)`,
      ].join(',\n') +
      ';',
  );
  sql.push(`INSERT INTO role_permissions (role, permission) VALUES ('ROLE_ADMIN', 'servers.manage'), ('ROLE_ADMIN', 'settings.manage'), ('ROLE_USER', 'servers.view');`);
  sql.push(`INSERT INTO storage_pools (id, name, path, description, default_pool) VALUES (1, 'default', ${escape(s.pool)}, 'Local Borg pool', 1);`);
  sql.push(
    'INSERT INTO servers (id, name, host, port, ssh_private_key_path, ssh_keys_deployed, backup_server_user) VALUES\n' +
      s.servers.map((name, i) => `(${i + 1}, ${escape(name)}, ${escape(`${name}.example.lan`)}, 22, ${escape(`${s.sshDir}/keys/${name}/id_ed25519`)}, 1, 'phpborg-borg')`).join(',\n') +
      ';',
  );
  sql.push(
    'INSERT INTO repository (id, server_id, storage_pool_id, type, repo_path) VALUES\n' +
      s.servers.map((name, i) => `(${i + 1}, ${i + 1}, 1, 'backup', ${escape(`${s.pool}/${name}/backup`)})`).join(',\n') +
      ';',
  );
  sql.push(
    'INSERT INTO backup_jobs (name, server_id, repository_id, schedule_type, schedule_time) VALUES\n' +
      s.servers.map((name, i) => `(${escape(`nightly ${name}`)}, ${i + 1}, ${i + 1}, 'daily', '01:${String(i * 10).padStart(2, '0')}')`).join(',\n') +
      ';',
  );
  // archives from the SEQUENCE engine: any size costs one statement
  const n = s.servers.length;
  sql.push(`INSERT INTO archives (repo_id, server_id, nom, archive_id, backup_config, dur, start, end, osize, csize, dsize, nfiles)
SELECT 1 + seq % ${n}, 1 + seq % ${n},
  CONCAT(ELT(1 + seq % ${n}, ${s.servers.map((x) => escape(x)).join(', ')}), '-', DATE_FORMAT(NOW() - INTERVAL seq HOUR, '%Y-%m-%d_%H:%i:%S')),
  SHA2(CONCAT('archive', seq), 256), 'backup', 30 + seq % 600,
  NOW() - INTERVAL seq HOUR, NOW() - INTERVAL seq HOUR + INTERVAL (30 + seq % 600) SECOND,
  100000000 + (seq * 104729) % 900000000, 50000000 + (seq * 15485863) % 400000000, (seq * 32452843) % 50000000, 1000 + (seq * 7919) % 90000
FROM seq_1_to_${Math.max(1, s.archives)} ORDER BY seq DESC;`);
  sql.push(`INSERT INTO jobs (queue, type, status, payload, progress, attempts, output, created_at, started_at, completed_at)
SELECT 'backup', 'backup', 'completed', JSON_OBJECT('server_id', 1 + seq % ${n}), 100, 1, 'archive created', NOW() - INTERVAL seq DAY, NOW() - INTERVAL seq DAY, NOW() - INTERVAL seq DAY + INTERVAL 5 MINUTE
FROM seq_1_to_24 ORDER BY seq DESC;`);
  sql.push(`INSERT INTO jobs (queue, type, status, payload, progress, attempts, error, created_at, started_at, completed_at) VALUES
('backup', 'backup', 'failed', JSON_OBJECT('server_id', ${n}), 40, 3, 'ssh: connect to host timed out', NOW() - INTERVAL 3 DAY, NOW() - INTERVAL 3 DAY, NOW() - INTERVAL 3 DAY + INTERVAL 1 MINUTE);`);
  sql.push(`INSERT INTO phpborg_backups (filename, filepath, size_bytes, encrypted, hash_sha256, phpborg_version, php_version, mysql_version, created_at, created_by, backup_type, notes) VALUES
('phpborg-backup-2024-01-07-020000.tar.gz', ${escape(`${s.pool}/phpborg-backup-2024-01-07-020000.tar.gz`)}, 1048576, 0, ${escape('0'.repeat(64))}, 'v1.2.2', '8.3.6', '10.11.6-MariaDB', '2024-01-07 02:00:00', 1, 'scheduled', 'file no longer on disk');`);
  sql.push('COMMIT;');
  return sql.join('\n\n') + '\n';
}
