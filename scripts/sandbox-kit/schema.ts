// phpBorg's database as a real install has it: install/schema.sql (the installer's tables),
// install/data.sql (its settings rows) and migrations/001…003, all "already applied" at the installed
// version (the sandbox runs them at `up`, in that order). Origin's newer commit brings migration 004,
// which adds servers.created_at/updated_at and so stamps every existing server with its own run time:
// creation dates of older servers are unknowable, as on a real install.
// Column names are phpBorg's (servers.host, archives.nom/repo_id/dur/nfiles, …); values differ.

/** the Borg pool as the installer names it; the sandbox roots it at DIR when it runs the SQL */
export const POOL_PATH = '/opt/backups';

export const INSTALL_SCHEMA = `-- phpBorg installer: base schema
CREATE TABLE IF NOT EXISTS users (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  username VARCHAR(100) NOT NULL,
  password VARCHAR(255) NOT NULL,
  email VARCHAR(190) NOT NULL,
  roles JSON NOT NULL,
  active TINYINT(1) NOT NULL DEFAULT 1,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_login_at TIMESTAMP NULL DEFAULT NULL,
  UNIQUE KEY uniq_users_username (username),
  UNIQUE KEY uniq_users_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS refresh_tokens (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id INT UNSIGNED NOT NULL,
  token VARCHAR(255) NOT NULL,
  expires_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  revoked TINYINT(1) NOT NULL DEFAULT 0,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  UNIQUE KEY uniq_refresh_tokens_token (token),
  KEY idx_refresh_tokens_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS role_permissions (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  role VARCHAR(50) NOT NULL,
  permission VARCHAR(100) NOT NULL,
  UNIQUE KEY uniq_role_permission (role, permission)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS settings (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  \`key\` VARCHAR(100) NOT NULL,
  value TEXT NULL,
  category VARCHAR(50) NOT NULL DEFAULT 'general',
  type VARCHAR(20) NOT NULL DEFAULT 'string',
  description VARCHAR(255) NULL,
  updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  UNIQUE KEY uniq_settings_key (\`key\`),
  KEY idx_settings_category (category)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS servers (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(50) NOT NULL,
  host VARCHAR(150) NOT NULL,
  backuptype VARCHAR(20) NOT NULL DEFAULT 'internal',
  port INT NOT NULL DEFAULT 22,
  ssh_pub_key TEXT NULL,
  ssh_private_key_path VARCHAR(255) NULL,
  ssh_keys_deployed TINYINT(1) NOT NULL DEFAULT 0,
  backup_server_user VARCHAR(64) NOT NULL DEFAULT 'phpborg-borg',
  active TINYINT(1) NOT NULL DEFAULT 1,
  capabilities_detected TINYINT(1) NOT NULL DEFAULT 0,
  capabilities_data JSON NULL,
  UNIQUE KEY uniq_servers_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS storage_pools (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  path VARCHAR(500) NOT NULL,
  description VARCHAR(255) NULL,
  default_pool TINYINT(1) NOT NULL DEFAULT 0,
  active TINYINT(1) NOT NULL DEFAULT 1,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS repository (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  server_id INT UNSIGNED NOT NULL,
  storage_pool_id INT UNSIGNED NULL,
  type VARCHAR(20) NOT NULL DEFAULT 'backup',
  repo_path VARCHAR(500) NOT NULL,
  passphrase VARCHAR(255) NULL,
  encryption VARCHAR(30) NOT NULL DEFAULT 'repokey-blake2',
  compression VARCHAR(30) NOT NULL DEFAULT 'lz4',
  retention_daily INT NOT NULL DEFAULT 7,
  retention_weekly INT NOT NULL DEFAULT 4,
  retention_monthly INT NOT NULL DEFAULT 6,
  size BIGINT UNSIGNED NOT NULL DEFAULT 0,
  KEY idx_repository_server (server_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS archives (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  repo_id INT UNSIGNED NULL,
  server_id INT UNSIGNED NULL,
  nom VARCHAR(255) NOT NULL,
  archive_id VARCHAR(64) NOT NULL,
  backup_config VARCHAR(100) NULL,
  dur DOUBLE NULL,
  start DATETIME NULL,
  end DATETIME NULL,
  osize BIGINT UNSIGNED NULL,
  csize BIGINT UNSIGNED NULL,
  dsize BIGINT UNSIGNED NULL,
  nfiles INT UNSIGNED NULL,
  UNIQUE KEY uniq_archives_archive_id (archive_id),
  KEY idx_archives_server (server_id),
  KEY idx_archives_repo (repo_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS backup_jobs (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  server_id INT UNSIGNED NOT NULL,
  repository_id INT UNSIGNED NULL,
  schedule_type VARCHAR(20) NOT NULL DEFAULT 'daily',
  schedule_time VARCHAR(5) NOT NULL DEFAULT '01:00',
  enabled TINYINT(1) NOT NULL DEFAULT 1,
  last_run_at TIMESTAMP NULL DEFAULT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS jobs (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  queue VARCHAR(50) NOT NULL DEFAULT 'default',
  type VARCHAR(50) NOT NULL,
  payload JSON NULL,
  status ENUM('pending','running','completed','failed','cancelled') NOT NULL DEFAULT 'pending',
  worker_id VARCHAR(50) NULL,
  progress TINYINT UNSIGNED NOT NULL DEFAULT 0,
  attempts INT UNSIGNED NOT NULL DEFAULT 0,
  max_attempts INT UNSIGNED NOT NULL DEFAULT 3,
  output LONGTEXT NULL,
  error TEXT NULL,
  started_at TIMESTAMP NULL DEFAULT NULL,
  completed_at TIMESTAMP NULL DEFAULT NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  created_by INT UNSIGNED NULL,
  KEY idx_jobs_status (status),
  KEY idx_jobs_queue (queue)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
`;

/** install/data.sql: the settings the installer writes (smtp.password stays '' until set in the UI) */
export const INSTALL_DATA = `-- phpBorg installer: default settings
INSERT IGNORE INTO settings (\`key\`, value, category, type, description) VALUES
('app.name', 'phpBorg', 'general', 'string', 'Application name'),
('app.timezone', 'Europe/Paris', 'general', 'string', 'Time zone'),
('app.language', 'fr', 'general', 'string', 'Interface language'),
('setup.completed', '1', 'general', 'boolean', 'Setup wizard completed'),
('smtp.enabled', '0', 'smtp', 'boolean', 'Send email'),
('smtp.host', '', 'smtp', 'string', 'SMTP server'),
('smtp.port', '587', 'smtp', 'integer', 'SMTP port'),
('smtp.username', '', 'smtp', 'string', 'SMTP user'),
('smtp.password', '', 'smtp', 'password', 'SMTP password (encrypted)'),
('smtp.encryption', 'tls', 'smtp', 'string', 'none, tls or ssl'),
('smtp.from_email', 'phpborg@localhost', 'smtp', 'string', 'Sender address'),
('smtp.from_name', 'phpBorg', 'smtp', 'string', 'Sender name'),
('notification.email', '', 'notification', 'string', 'Where notifications go'),
('backup.retention.daily', '7', 'backup', 'integer', 'Daily archives kept'),
('backup.retention.weekly', '4', 'backup', 'integer', 'Weekly archives kept'),
('backup.retention.monthly', '6', 'backup', 'integer', 'Monthly archives kept'),
('backup.retention.yearly', '1', 'backup', 'integer', 'Yearly archives kept');
`;

export const APPLIED_MIGRATIONS: Record<string, string> = {
  '001_create_phpborg_backups.sql': `-- phpBorg self-backups and their settings
CREATE TABLE IF NOT EXISTS phpborg_backups (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  filename VARCHAR(255) NOT NULL,
  filepath VARCHAR(500) NOT NULL,
  size_bytes BIGINT UNSIGNED NOT NULL DEFAULT 0,
  encrypted TINYINT(1) NOT NULL DEFAULT 0,
  hash_sha256 CHAR(64) NULL,
  phpborg_version VARCHAR(50) NULL,
  php_version VARCHAR(20) NULL,
  mysql_version VARCHAR(50) NULL,
  node_version VARCHAR(20) NULL,
  borg_version VARCHAR(20) NULL,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  created_by INT UNSIGNED NULL,
  backup_type ENUM('manual','pre_update','scheduled') NOT NULL DEFAULT 'manual',
  notes TEXT NULL,
  UNIQUE KEY uniq_phpborg_backups_filename (filename),
  KEY idx_phpborg_backups_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

INSERT IGNORE INTO settings (\`key\`, value, category, type, description) VALUES
('backup_storage_path', '${POOL_PATH}', 'backup', 'string', 'Where phpBorg backups are stored'),
('backup_encryption_enabled', '0', 'backup', 'boolean', 'Encrypt phpBorg backups'),
('backup_encryption_passphrase', '', 'backup', 'password', 'Passphrase of encrypted backups'),
('backup_retention_count', '3', 'backup', 'integer', 'phpBorg backups kept'),
('backup_scheduled_enabled', '1', 'backup', 'boolean', 'Weekly scheduled backup'),
('backup_scheduled_day', 'sunday', 'backup', 'string', 'Day of the scheduled backup'),
('backup_scheduled_time', '02:00', 'backup', 'string', 'Time of the scheduled backup'),
('backup_notify_email', '1', 'backup', 'boolean', 'Email after a backup');
`,
  '002_agent_settings.sql': `-- agents: where they connect
INSERT IGNORE INTO settings (\`key\`, value, category, type, description) VALUES
('agent.server_url', '', 'agent', 'string', 'URL agents connect to'),
('agent.port', '9443', 'agent', 'integer', 'Agent mTLS port');
`,
  '003_agent_ca_settings.sql': `-- agents: their certificate authority
INSERT IGNORE INTO settings (\`key\`, value, category, type, description) VALUES
('agent.ca_path', '/etc/phpborg/certs', 'agent', 'string', 'Agent CA directory'),
('agent.heartbeat_interval', '60', 'agent', 'integer', 'Seconds between agent heartbeats');
`,
};

/** origin's newer commit A: the migration that adds timestamps to servers, stamping existing rows */
export const NEW_MIGRATION = {
  file: '004_add_servers_timestamps.sql',
  sql: `-- servers: creation and update times (existing rows get this migration's time)
ALTER TABLE servers
  ADD COLUMN created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  ADD COLUMN updated_at TIMESTAMP NULL DEFAULT NULL ON UPDATE CURRENT_TIMESTAMP;
`,
};
