// The ledger: keeper's own SQLite file. It outlives phpBorg's database: the backup
// catalog, jobs, update history, the maintenance journal, settings and the audit log live here, so a
// restored database dump can never make them disappear.
import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type Ledger = Database.Database;

/** Versioned schema; append only. Each entry runs once, inside a transaction. */
const MIGRATIONS: string[] = [
  `
  CREATE TABLE phpborg_backups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    filename TEXT NOT NULL UNIQUE,
    filepath TEXT NOT NULL,
    size_bytes INTEGER NOT NULL DEFAULT 0,
    encrypted INTEGER NOT NULL DEFAULT 0,
    hash_sha256 TEXT,
    mac TEXT,
    phpborg_version TEXT,
    git_commit TEXT,
    php_version TEXT,
    mysql_version TEXT,
    node_version TEXT,
    borg_version TEXT,
    files_count INTEGER,
    database_size_bytes INTEGER,
    maintenance_window_ms INTEGER,
    created_at TEXT NOT NULL,
    created_by INTEGER,
    created_by_name TEXT,
    backup_type TEXT NOT NULL,
    notes TEXT,
    status TEXT NOT NULL DEFAULT 'creating',
    sha256_path TEXT,
    json_path TEXT,
    origin TEXT NOT NULL DEFAULT 'local',
    pinned INTEGER NOT NULL DEFAULT 0,
    job_id TEXT
  );
  CREATE INDEX phpborg_backups_created ON phpborg_backups(created_at);

  CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    percent REAL NOT NULL DEFAULT 0,
    step TEXT,
    message TEXT,
    params_json TEXT,
    result_json TEXT,
    error_json TEXT,
    actor_id INTEGER,
    actor_name TEXT,
    helper_pid INTEGER,
    log TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
  );
  CREATE TABLE job_events (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    type TEXT NOT NULL,
    step TEXT,
    percent REAL,
    message TEXT,
    data_json TEXT,
    PRIMARY KEY (job_id, seq)
  );
  CREATE TABLE locks (
    name TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    acquired_at TEXT NOT NULL
  );
  CREATE TABLE maintenance_journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT,
    units_json TEXT NOT NULL,
    temp_files_json TEXT NOT NULL DEFAULT '[]',
    state TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    closed_at TEXT
  );
  CREATE TABLE update_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT,
    from_commit TEXT NOT NULL,
    from_version TEXT,
    to_commit TEXT,
    to_version TEXT,
    target TEXT,
    backup_id INTEGER,
    status TEXT NOT NULL,
    failed_step TEXT,
    error TEXT,
    actor_id INTEGER,
    actor_name TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT
  );
  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value_json TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor_id INTEGER,
    actor_name TEXT,
    action TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    details_json TEXT
  );
  CREATE INDEX audit_log_action ON audit_log(action);
  CREATE TABLE download_tokens (
    token_hash TEXT PRIMARY KEY,
    backup_id INTEGER NOT NULL,
    expires_at TEXT NOT NULL
  );
  `,
  // a history row is an update or a manual rollback of one (parent_id); details
  // hold the rollback outcome, the install's state and the emergency command when it failed
  `
  ALTER TABLE update_history ADD COLUMN kind TEXT NOT NULL DEFAULT 'update';
  ALTER TABLE update_history ADD COLUMN parent_id INTEGER;
  ALTER TABLE update_history ADD COLUMN details_json TEXT;
  CREATE INDEX update_history_started ON update_history(started_at);
  `,
  // a download made with a link is audited as the admin who asked for the link
  `
  ALTER TABLE download_tokens ADD COLUMN actor_id INTEGER;
  ALTER TABLE download_tokens ADD COLUMN actor_name TEXT;
  `,
  // the write-ahead operation journal replaces the maintenance journal (units + temp files only);
  // an entry a dead helper left open keeps its units and temporaries so recovery still finds them
  `
  CREATE TABLE operations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT,
    kind TEXT NOT NULL,
    pid INTEGER,
    status TEXT NOT NULL,
    step TEXT,
    steps_json TEXT NOT NULL DEFAULT '[]',
    safety_json TEXT,
    target_json TEXT,
    touched_json TEXT NOT NULL DEFAULT '[]',
    temp_json TEXT NOT NULL DEFAULT '[]',
    units_json TEXT NOT NULL DEFAULT '[]',
    units_stopped INTEGER NOT NULL DEFAULT 0,
    recoveries INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    opened_at TEXT NOT NULL,
    closed_at TEXT
  );
  CREATE INDEX operations_job ON operations(job_id);
  CREATE INDEX operations_status ON operations(status);
  INSERT INTO operations (job_id, kind, status, temp_json, units_json, units_stopped, opened_at)
    SELECT job_id, 'backup', 'open', temp_files_json, units_json, CASE state WHEN 'units_stopped' THEN 1 ELSE 0 END, opened_at
    FROM maintenance_journal WHERE state NOT IN ('closed', 'recovered');
  DROP TABLE maintenance_journal;
  `,
  // the restore drill's verdict per backup: NULL = never drilled; 'passed' or 'failed' with the reason
  `
  ALTER TABLE phpborg_backups ADD COLUMN drill_status TEXT;
  ALTER TABLE phpborg_backups ADD COLUMN drill_at TEXT;
  ALTER TABLE phpborg_backups ADD COLUMN drill_error TEXT;
  `,
  // off-site copies: one row per backup and target. No foreign key: the row outlives a local
  // deletion, because it is what proves a remote file is ours when the target's retention runs
  `
  CREATE TABLE offsite_copies (
    backup_id INTEGER NOT NULL,
    target TEXT NOT NULL,
    filename TEXT NOT NULL,
    sha256 TEXT,
    size_bytes INTEGER,
    status TEXT NOT NULL,
    error_code TEXT,
    error TEXT,
    method TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    verified_at TEXT,
    removed_at TEXT,
    PRIMARY KEY (backup_id, target)
  );
  CREATE INDEX offsite_copies_target ON offsite_copies(target, status);
  `,
];

export function ledgerPath(stateDir: string): string {
  return join(stateDir, 'ledger.sqlite');
}

/** Opens (creating 0700 dir / 0600 file when missing) and migrates the ledger. */
export function openLedger(file: string, opts: { readonly?: boolean } = {}): Ledger {
  if (opts.readonly) {
    if (!existsSync(file)) throw new Error(`no ledger at ${file}`);
    const db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 5000');
    return db;
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  chmodSync(dirname(file), 0o700);
  if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600));
  chmodSync(file, 0o600);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  migrate(db);
  return db;
}

/**
 * Throws unless the ledger at `file` passes SQLite's quick check and its catalog can be read. Opens
 * it read-only and never writes: the emergency path looks at a ledger that may be damaged.
 */
export function checkLedger(file: string): void {
  const db = openLedger(file, { readonly: true });
  try {
    const ok = db.pragma('quick_check', { simple: true });
    if (ok !== 'ok') throw new Error(`integrity check: ${String(ok)}`);
    db.prepare('SELECT COUNT(*) FROM phpborg_backups').get();
  } finally {
    db.close();
  }
}

function migrate(db: Ledger): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  const current = row.v ?? 0;
  MIGRATIONS.forEach((sql, i) => {
    const version = i + 1;
    if (version <= current) return;
    db.transaction(() => {
      db.exec(sql);
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version, new Date().toISOString());
    })();
  });
}

export function schemaVersion(db: Ledger): number {
  return (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number }).v;
}
