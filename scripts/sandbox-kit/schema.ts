// phpBorg's migrations as they ship in the code's migrations/ folder. 001–004 are "already applied"
// (the sandbox runs them at `up`); 005 arrives with origin's newer commit.
export const APPLIED_MIGRATIONS: Record<string, string> = {
  '001_create_settings_users.sql': `-- phpBorg 1.0: settings and users
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

CREATE TABLE IF NOT EXISTS users (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  username VARCHAR(100) NOT NULL,
  email VARCHAR(190) NOT NULL,
  password VARCHAR(255) NOT NULL,
  roles JSON NOT NULL,
  active TINYINT(1) NOT NULL DEFAULT 1,
  last_login_at DATETIME NULL,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME NULL,
  UNIQUE KEY uniq_users_username (username),
  UNIQUE KEY uniq_users_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
`,
  '002_create_servers_archives.sql': `-- phpBorg 1.0: backed-up servers and their borg archives
CREATE TABLE IF NOT EXISTS servers (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  hostname VARCHAR(255) NOT NULL,
  port SMALLINT UNSIGNED NOT NULL DEFAULT 22,
  username VARCHAR(64) NOT NULL DEFAULT 'root',
  ssh_key_path VARCHAR(255) NULL,
  description VARCHAR(255) NULL,
  active TINYINT(1) NOT NULL DEFAULT 1,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at DATETIME NULL,
  UNIQUE KEY uniq_servers_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS archives (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  server_id INT UNSIGNED NULL,
  repository_id INT UNSIGNED NULL,
  name VARCHAR(255) NOT NULL,
  archive_id CHAR(64) NULL,
  start DATETIME NULL,
  end DATETIME NULL,
  duration DOUBLE NULL,
  files_count INT UNSIGNED NULL,
  original_size BIGINT UNSIGNED NULL,
  compressed_size BIGINT UNSIGNED NULL,
  deduplicated_size BIGINT UNSIGNED NULL,
  job_id INT UNSIGNED NULL,
  KEY idx_archives_server (server_id),
  KEY idx_archives_start (start)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
`,
  '003_create_jobs.sql': `-- phpBorg 1.1: the job queue's durable side (ids travel through Redis list phpborg:jobs)
CREATE TABLE IF NOT EXISTS jobs (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  type VARCHAR(50) NOT NULL,
  status ENUM('pending','running','completed','failed','cancelled') NOT NULL DEFAULT 'pending',
  payload JSON NULL,
  progress TINYINT UNSIGNED NOT NULL DEFAULT 0,
  output TEXT NULL,
  error TEXT NULL,
  worker_id INT UNSIGNED NULL,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  started_at DATETIME NULL,
  completed_at DATETIME NULL,
  KEY idx_jobs_status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
`,
  '004_create_phpborg_backups.sql': `-- phpBorg 1.2: self-backups of phpBorg
CREATE TABLE IF NOT EXISTS phpborg_backups (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  filename VARCHAR(255) NOT NULL,
  filepath VARCHAR(500) NOT NULL,
  size_bytes BIGINT UNSIGNED NOT NULL DEFAULT 0,
  encrypted TINYINT(1) NOT NULL DEFAULT 0,
  hash_sha256 CHAR(64) NULL,
  phpborg_version VARCHAR(50) NULL,
  git_commit VARCHAR(40) NULL,
  php_version VARCHAR(20) NULL,
  mysql_version VARCHAR(50) NULL,
  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  created_by INT UNSIGNED NULL,
  backup_type ENUM('manual','scheduled','pre_update','pre_restore','pre_emergency_restore') NOT NULL DEFAULT 'manual',
  notes TEXT NULL,
  status ENUM('creating','completed','failed') NOT NULL DEFAULT 'creating',
  UNIQUE KEY uniq_phpborg_backups_filename (filename),
  KEY idx_phpborg_backups_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
`,
};

/** origin's newer commit A: a migration that alters a table */
export const NEW_MIGRATION = {
  file: '005_add_servers_location.sql',
  sql: `-- phpBorg 1.3: where each server lives
ALTER TABLE servers ADD COLUMN location VARCHAR(100) NULL AFTER hostname;
`,
};
