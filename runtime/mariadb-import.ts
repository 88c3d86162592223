// The restore side of phpBorg's MariaDB: recreate the database and import a dump into it. Credentials go
// only through the 0600 defaults file of runtime/mariadb.ts; the dump is streamed on the client's stdin.
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import mysql from 'mysql2/promise';
import type { PhpborgEnv } from './install.ts';
import { dbConnectionOptions } from './probes.ts';
import { safeEnv } from './exec.ts';
import { withDefaultsFile } from './mariadb.ts';
import { databaseTargetProblem } from './db-guard.ts';

export interface ImportResult {
  /** how the old content went: DROP DATABASE + CREATE, or every object dropped (no DROP DATABASE right) */
  recreated: 'database' | 'objects';
  size_bytes: number;
  duration_ms: number;
}

/** A connection to the server without selecting the database (it may be about to go, or be gone). */
async function serverConnection(env: PhpborgEnv): Promise<mysql.Connection> {
  const { database: _db, ...opts } = dbConnectionOptions(env);
  return mysql.createConnection({ ...opts, multipleStatements: false });
}

const ACCESS_DENIED = new Set(['ER_DBACCESS_DENIED_ERROR', 'ER_ACCESS_DENIED_ERROR', 'ER_SPECIFIC_ACCESS_DENIED_ERROR']);

/**
 * Empties the install's database so the dump alone defines it (tables created after the backup do
 * not survive): DROP DATABASE and CREATE it again with its previous charset and collation; when the
 * user may not drop the database, drops every table, view, routine and event in it instead.
 */
export async function recreateDatabase(env: PhpborgEnv): Promise<'database' | 'objects'> {
  // the last line before a DROP: whatever .env got here, MariaDB's own schemas are never emptied
  const refused = databaseTargetProblem(env, 'the .env used for the import');
  if (refused) throw new Error(refused);
  const c = await serverConnection(env);
  try {
    const db = c.escapeId(env.DB_NAME);
    const [rows] = await c.query(
      'SELECT DEFAULT_CHARACTER_SET_NAME AS cs, DEFAULT_COLLATION_NAME AS co FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
      [env.DB_NAME],
    );
    const found = (rows as { cs: string; co: string }[])[0];
    const charset = found ? ` CHARACTER SET ${found.cs.replace(/[^A-Za-z0-9_]/g, '')} COLLATE ${found.co.replace(/[^A-Za-z0-9_]/g, '')}` : '';
    try {
      await c.query(`DROP DATABASE IF EXISTS ${db}`);
      await c.query(`CREATE DATABASE ${db}${charset}`);
      return 'database';
    } catch (e) {
      if (!ACCESS_DENIED.has((e as { code?: string }).code ?? '') || !found) throw e;
    }
    await c.query(`USE ${db}`);
    await c.query('SET FOREIGN_KEY_CHECKS = 0');
    const [objs] = await c.query(
      'SELECT TABLE_NAME AS n, TABLE_TYPE AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?',
      [env.DB_NAME],
    );
    for (const { n, t } of objs as { n: string; t: string }[]) {
      const kind = t === 'VIEW' ? 'VIEW' : t === 'SEQUENCE' ? 'SEQUENCE' : 'TABLE';
      await c.query(`DROP ${kind} IF EXISTS ${c.escapeId(n)}`);
    }
    const [routines] = await c.query(
      'SELECT ROUTINE_NAME AS n, ROUTINE_TYPE AS t FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?',
      [env.DB_NAME],
    );
    for (const { n, t } of routines as { n: string; t: string }[]) {
      await c.query(`DROP ${t === 'FUNCTION' ? 'FUNCTION' : 'PROCEDURE'} IF EXISTS ${c.escapeId(n)}`);
    }
    const [events] = await c.query('SELECT EVENT_NAME AS n FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?', [env.DB_NAME]);
    for (const { n } of events as { n: string }[]) await c.query(`DROP EVENT IF EXISTS ${c.escapeId(n)}`);
    return 'objects';
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * Drops and recreates the install's database, then imports `sqlFile` (a mariadb-dump of that database)
 * with `mariadb --defaults-extra-file=<0600 file> <db>`, the file streamed on stdin. Throws with the
 * client's last error lines when the import fails; the database is then partial and the caller rolls back.
 */
export async function importDatabase(
  env: PhpborgEnv,
  sqlFile: string,
  opts: { signal?: AbortSignal; onLine?: (line: string) => void } = {},
): Promise<ImportResult> {
  const t0 = performance.now();
  const { size } = await stat(sqlFile);
  const recreated = await recreateDatabase(env);
  await withDefaultsFile(env, async (defaults) => {
    opts.signal?.throwIfAborted();
    // --defaults-extra-file must be the first argument
    const child = spawn('mariadb', [`--defaults-extra-file=${defaults}`, '--batch', '--max-allowed-packet=1G', env.DB_NAME], {
      env: safeEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: opts.signal,
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => {
      const s = b.toString('utf8');
      if (stderr.length < 64 * 1024) stderr += s;
      if (opts.onLine) for (const l of s.split('\n')) if (l.trim()) opts.onLine(l);
    });
    child.stdout.resume();
    const exited = new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve, reject) => {
      child.on('error', (e) => reject(new Error(`cannot run mariadb: ${e.message}`)));
      child.on('close', (code, sig) => resolve({ code, sig }));
    });
    const input = createReadStream(sqlFile);
    input.on('error', () => child.kill('SIGTERM'));
    child.stdin.on('error', () => {}); // the client exiting early is reported by its exit status
    input.pipe(child.stdin);
    const { code, sig } = await exited;
    if (code !== 0) {
      const why = stderr.trim().split('\n').filter(Boolean).slice(-3).join(' | ') || `exit ${code ?? sig}`;
      throw new Error(`database import failed: ${why}`);
    }
  });
  return { recreated, size_bytes: size, duration_ms: Math.round(performance.now() - t0) };
}

/** CHECKSUM TABLE of every base table (name → checksum), to compare a restored database with its source. */
export async function tableChecksums(env: PhpborgEnv): Promise<Record<string, string>> {
  const c = await mysql.createConnection(dbConnectionOptions(env));
  try {
    const [tables] = await c.query(
      "SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    );
    const out: Record<string, string> = {};
    for (const { t } of tables as { t: string }[]) {
      const [rows] = await c.query(`CHECKSUM TABLE ${c.escapeId(t)} EXTENDED`);
      out[t] = String((rows as { Checksum: string | number | null }[])[0].Checksum);
    }
    return out;
  } finally {
    await c.end().catch(() => {});
  }
}
