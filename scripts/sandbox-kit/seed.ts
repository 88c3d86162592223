// The rows a lived-in phpBorg holds: settings (smtp.password encrypted the way phpBorg does it),
// servers, users, archives (grown with --size), jobs and one older self-backup.
import { createCipheriv, createHash, randomBytes, scryptSync } from 'node:crypto';
import { escape } from 'mysql2';

/** phpBorg's settings encryption: base64(IV ‖ AES-256-CBC(value)), key = SHA-256(APP_SECRET). */
export function encryptSetting(value: string, appSecret: string): string {
  const key = createHash('sha256').update(appSecret).digest();
  const iv = randomBytes(16);
  const c = createCipheriv('aes-256-cbc', key, iv);
  return Buffer.concat([iv, c.update(value, 'utf8'), c.final()]).toString('base64');
}

/** what the API stand-in verifies: scrypt$<salt hex>$<key hex> */
export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  return `scrypt$${salt.toString('hex')}$${scryptSync(password, salt, 32).toString('hex')}`;
}

export interface SeedInput {
  appSecret: string;
  storage: string;
  sshDir: string;
  servers: string[];
  admin: { username: string; email: string; password: string };
  user: { username: string; email: string; password: string };
  smtpPassword: string;
  archives: number;
}

/** about how many bytes one archives row adds to a dump */
export const ARCHIVE_ROW_BYTES = 210;

export function seedSql(s: SeedInput): string {
  const settings: [string, string, string, string, string][] = [
    ['backup_storage_path', s.storage, 'backup', 'string', 'Where phpBorg self-backups are written'],
    ['backup_encryption_enabled', 'false', 'backup', 'boolean', 'Encrypt self-backups'],
    ['backup_retention_count', '5', 'backup', 'integer', 'Self-backups kept'],
    ['backup_scheduled_enabled', 'false', 'backup', 'boolean', 'Weekly scheduled self-backup'],
    ['backup_scheduled_day', 'sunday', 'backup', 'string', 'Day of the scheduled self-backup'],
    ['backup_scheduled_time', '03:00', 'backup', 'string', 'Time of the scheduled self-backup'],
    ['backup_notify_email', 'admin@phpborg.local', 'backup', 'string', 'Who hears about self-backups'],
    ['app.language', 'fr', 'app', 'string', 'Interface language'],
    ['app.timezone', 'Europe/Paris', 'app', 'string', 'Time zone'],
    ['app.name', 'phpBorg', 'app', 'string', 'Application name'],
    ['smtp.enabled', 'false', 'smtp', 'boolean', 'Send email'],
    ['smtp.host', '127.0.0.1', 'smtp', 'string', 'SMTP server'],
    ['smtp.port', '2525', 'smtp', 'integer', 'SMTP port'],
    ['smtp.username', 'phpborg', 'smtp', 'string', 'SMTP user'],
    ['smtp.password', encryptSetting(s.smtpPassword, s.appSecret), 'smtp', 'encrypted', 'SMTP password (encrypted)'],
    ['smtp.encryption', 'none', 'smtp', 'string', 'none, tls or ssl'],
    ['smtp.from_email', 'phpborg@phpborg.local', 'smtp', 'string', 'Sender address'],
    ['smtp.from_name', 'phpBorg', 'smtp', 'string', 'Sender name'],
    ['notification.email', 'admin@phpborg.local', 'notification', 'string', 'Where notifications go'],
    ['borg.default_compression', 'zstd,6', 'borg', 'string', 'Default borg compression'],
  ];
  const sql: string[] = ['SET NAMES utf8mb4;', 'START TRANSACTION;'];
  sql.push(
    'INSERT INTO settings (`key`, value, category, type, description) VALUES\n' +
      settings.map((r) => `(${r.map((x) => escape(x)).join(', ')})`).join(',\n') +
      ';',
  );
  sql.push(
    'INSERT INTO users (id, username, email, password, roles, active, created_at) VALUES\n' +
      [
        `(1, ${escape(s.admin.username)}, ${escape(s.admin.email)}, ${escape(hashPassword(s.admin.password))}, '["ROLE_ADMIN"]', 1, NOW() - INTERVAL 400 DAY)`,
        `(2, ${escape(s.user.username)}, ${escape(s.user.email)}, ${escape(hashPassword(s.user.password))}, '["ROLE_USER"]', 1, NOW() - INTERVAL 120 DAY)`,
      ].join(',\n') +
      ';',
  );
  sql.push(
    'INSERT INTO servers (id, name, hostname, port, username, ssh_key_path, description, created_at) VALUES\n' +
      s.servers
        .map(
          (name, i) =>
            `(${i + 1}, ${escape(name)}, ${escape(`${name}.example.lan`)}, 22, 'root', ${escape(`${s.sshDir}/keys/${name}/id_ed25519`)}, ${escape(`${name} backups`)}, NOW() - INTERVAL ${300 - i * 40} DAY)`,
        )
        .join(',\n') +
      ';',
  );
  // archives from the SEQUENCE engine: any size costs one statement
  const n = s.servers.length;
  sql.push(`INSERT INTO archives (server_id, repository_id, name, archive_id, start, end, duration, files_count, original_size, compressed_size, deduplicated_size, job_id)
SELECT 1 + seq % ${n}, 1 + seq % ${n},
  CONCAT(ELT(1 + seq % ${n}, ${s.servers.map((x) => escape(x)).join(', ')}), '-', DATE_FORMAT(NOW() - INTERVAL seq HOUR, '%Y-%m-%d_%H:%i:%S')),
  SHA2(CONCAT('archive', seq), 256),
  NOW() - INTERVAL seq HOUR, NOW() - INTERVAL seq HOUR + INTERVAL (30 + seq % 600) SECOND, 30 + seq % 600,
  1000 + (seq * 7919) % 90000, 100000000 + (seq * 104729) % 900000000, 50000000 + (seq * 15485863) % 400000000, (seq * 32452843) % 50000000, NULL
FROM seq_1_to_${Math.max(1, s.archives)} ORDER BY seq DESC;`);
  sql.push(`INSERT INTO jobs (type, status, payload, progress, output, created_at, started_at, completed_at)
SELECT 'backup', 'completed', JSON_OBJECT('server_id', 1 + seq % ${n}), 100, 'archive created', NOW() - INTERVAL seq DAY, NOW() - INTERVAL seq DAY, NOW() - INTERVAL seq DAY + INTERVAL 5 MINUTE
FROM seq_1_to_24 ORDER BY seq DESC;`);
  sql.push(`INSERT INTO jobs (type, status, payload, progress, error, created_at, started_at, completed_at) VALUES
('backup', 'failed', JSON_OBJECT('server_id', ${n}), 40, 'ssh: connect to host timed out', NOW() - INTERVAL 3 DAY, NOW() - INTERVAL 3 DAY, NOW() - INTERVAL 3 DAY + INTERVAL 1 MINUTE);`);
  sql.push(`INSERT INTO phpborg_backups (filename, filepath, size_bytes, encrypted, hash_sha256, phpborg_version, git_commit, php_version, mysql_version, created_at, created_by, backup_type, notes, status) VALUES
('phpborg-backup-2024-01-07-030000-scheduled.tar.gz', ${escape(`${s.storage}/phpborg-backup-2024-01-07-030000-scheduled.tar.gz`)}, 1048576, 0, ${escape('0'.repeat(64))}, 'v1.2.2', NULL, '8.2.7', '10.11.6-MariaDB', '2024-01-07 03:00:00', 1, 'scheduled', 'file no longer on disk', 'completed');`);
  sql.push('COMMIT;');
  return sql.join('\n\n') + '\n';
}
