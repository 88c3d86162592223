// phpBorg's SQL migrations, tracked in a table of phpBorg's own database so each file runs once.
// phpBorg's own updater re-runs every file; we record filename and checksum instead. On first use
// every file present at the pre-update commit counts as applied: the installer ran them.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PhpborgEnv } from '../../runtime/install.ts';
import { run } from '../../runtime/exec.ts';
import { filesAt } from '../../runtime/git.ts';
import { withConnection, withDefaultsFile } from '../../runtime/mariadb.ts';
import type { Check } from '../../runtime/probes.ts';
import { errorMessage } from '../../runtime/error-message.ts';

export const TRACKING_TABLE = 'keeper_migrations';
export const MIGRATIONS_DIR = 'migrations';

const CREATE = `CREATE TABLE IF NOT EXISTS \`${TRACKING_TABLE}\` (
  filename VARCHAR(255) NOT NULL PRIMARY KEY,
  checksum CHAR(64) NOT NULL,
  applied_at DATETIME NOT NULL,
  source VARCHAR(16) NOT NULL
)`;

/** Migration file names in apply order: numeric-aware, so 2_x runs before 10_x. */
export function sortMigrations(names: string[]): string[] {
  return [...names].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

function isMigration(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*\.sql$/.test(name);
}

/** The .sql files in the work tree's migrations/ directory, in apply order. */
export async function migrationFiles(codeDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(join(codeDir, MIGRATIONS_DIR));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return sortMigrations(names.filter(isMigration));
}

export async function checksum(codeDir: string, name: string): Promise<string> {
  return createHash('sha256').update(await readFile(join(codeDir, MIGRATIONS_DIR, name))).digest('hex');
}

export async function trackingExists(env: PhpborgEnv): Promise<boolean> {
  return withConnection(env, async (c) => {
    const [rows] = await c.query(
      'SELECT COUNT(*) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?',
      [TRACKING_TABLE],
    );
    return Number((rows as { n: number | string }[])[0].n) > 0;
  });
}

/** filename → checksum of every recorded migration; empty when the table does not exist yet. */
export async function recordedMigrations(env: PhpborgEnv): Promise<Map<string, string>> {
  if (!(await trackingExists(env))) return new Map();
  return withConnection(env, async (c) => {
    const [rows] = await c.query(`SELECT filename, checksum FROM \`${TRACKING_TABLE}\``);
    return new Map((rows as { filename: string; checksum: string }[]).map((r) => [r.filename, r.checksum]));
  });
}

/**
 * Creates the tracking table on first use and records every migration present at `baseline` (the
 * commit the installer ran). The work tree must be clean at `baseline`, so the files on disk are
 * that commit's. Returns the number of files recorded as baseline (0 when the table existed).
 */
export async function ensureTracking(env: PhpborgEnv, codeDir: string, baseline: string, now: Date): Promise<number> {
  if (await trackingExists(env)) return 0;
  const atCommit = (await filesAt(codeDir, baseline, MIGRATIONS_DIR))
    .map((p) => p.slice(MIGRATIONS_DIR.length + 1))
    .filter((n) => isMigration(n) && !n.includes('/'));
  const rows: [string, string][] = [];
  for (const name of sortMigrations(atCommit)) rows.push([name, await checksum(codeDir, name)]);
  const at = sqlDate(now);
  await withConnection(env, async (c) => {
    await c.query(CREATE);
    for (const [name, sum] of rows) {
      await c.query(`INSERT IGNORE INTO \`${TRACKING_TABLE}\` (filename, checksum, applied_at, source) VALUES (?, ?, ?, 'baseline')`, [
        name,
        sum,
        at,
      ]);
    }
  });
  return rows.length;
}

/** Files in the work tree not yet recorded, in apply order. */
export async function pendingMigrations(env: PhpborgEnv, codeDir: string): Promise<string[]> {
  const recorded = await recordedMigrations(env);
  return (await migrationFiles(codeDir)).filter((n) => !recorded.has(n));
}

export class MigrationError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(message);
    this.name = 'MigrationError';
  }
}

/**
 * Runs one migration through the `mariadb` client (credentials in a 0600 defaults file, SQL on
 * stdin; batch mode stops at the first failing statement) and records it. A failure throws.
 */
export async function applyMigration(env: PhpborgEnv, codeDir: string, name: string, now: Date, signal?: AbortSignal): Promise<void> {
  const sql = await readFile(join(codeDir, MIGRATIONS_DIR, name));
  const sum = createHash('sha256').update(sql).digest('hex');
  const r = await withDefaultsFile(env, (defaults) =>
    run('mariadb', [`--defaults-extra-file=${defaults}`, '--batch', '--silent', `--database=${env.DB_NAME}`], {
      input: sql,
      signal,
      timeoutMs: 3_600_000,
    }),
  );
  if (r.code !== 0) {
    const why = r.stderr.trim().split('\n').filter(Boolean).slice(-3).join(' | ') || `exit ${r.code ?? r.signal}`;
    throw new MigrationError(name, `migration ${name} failed: ${why}`);
  }
  await withConnection(env, (c) =>
    c.query(`INSERT INTO \`${TRACKING_TABLE}\` (filename, checksum, applied_at, source) VALUES (?, ?, ?, 'keeper')`, [
      name,
      sum,
      sqlDate(now),
    ]),
  );
}

/**
 * Health check: every migration file in the work tree is recorded. A recorded file whose content
 * changed upstream is reported, not failed: it ran once and will not run again.
 */
export async function migrationsRecordedCheck(env: PhpborgEnv, codeDir: string): Promise<Check> {
  const t0 = performance.now();
  try {
    const recorded = await recordedMigrations(env);
    const files = await migrationFiles(codeDir);
    const missing = files.filter((n) => !recorded.has(n));
    const changed: string[] = [];
    for (const n of files) {
      const sum = recorded.get(n);
      if (sum && sum !== (await checksum(codeDir, n))) changed.push(n);
    }
    const ms = Math.round(performance.now() - t0);
    if (missing.length) return { name: 'migrations', ok: false, latency_ms: ms, error: `not recorded: ${missing.join(', ')}` };
    const note = changed.length ? `; changed since applied: ${changed.join(', ')}` : '';
    return { name: 'migrations', ok: true, latency_ms: ms, detail: `${files.length} recorded${note}` };
  } catch (e) {
    return { name: 'migrations', ok: false, latency_ms: Math.round(performance.now() - t0), error: errorMessage(e) };
  }
}

function sqlDate(d: Date): string {
  return d.toISOString().slice(0, 19).replace('T', ' ');
}
