// phpBorg's MariaDB as the helper sees it: the dump (mariadb-dump, credentials only in a 0600
// defaults file, never on a command line), row counts, server version. Restore adds its import here.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import type { PhpborgEnv } from './install.ts';
import { dbConnectionOptions } from './probes.ts';
import { safeEnv } from './exec.ts';
import { withKeeperTemp } from './temp.ts';

/** One option-file value, quoted so that any character survives (MariaDB option-file escapes). */
function optionValue(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t') + '"';
}

/** The [client] option text for the install's credentials (user, password, host/port or socket). */
export function clientOptions(env: PhpborgEnv): string {
  const lines = ['[client]', `user=${optionValue(env.DB_USER)}`, `password=${optionValue(env.DB_PASSWORD)}`];
  if (env.DB_SOCKET) lines.push(`socket=${optionValue(env.DB_SOCKET)}`);
  else lines.push(`host=${optionValue(env.DB_HOST)}`, `port=${env.DB_PORT}`, 'protocol=TCP');
  return lines.join('\n') + '\n';
}

/**
 * Writes a 0600 defaults file in a fresh 0700 keeper temp dir (runtime/temp.ts: under the state dir,
 * swept at the next start if this process dies first), runs fn with its path, removes it whatever
 * happens. It is the only place the password is written.
 */
export async function withDefaultsFile<T>(env: PhpborgEnv, fn: (file: string) => Promise<T>): Promise<T> {
  return withKeeperTemp('my', async (dir) => {
    const file = join(dir, 'client.cnf');
    await writeFile(file, clientOptions(env), { mode: 0o600, flag: 'wx' });
    return fn(file);
  });
}

export interface DumpResult {
  file: string;
  size_bytes: number;
  sha256: string;
  /** false when mysql.proc was unreadable and the dump was retried without routines and events */
  routines: boolean;
  duration_ms: number;
}

export const DUMP_ARGS = ['--single-transaction', '--routines', '--triggers', '--events', '--hex-blob'];

/** Text mariadb-dump prints when the routine/event system tables are corrupt or missing. */
export function isProcTableError(stderr: string): boolean {
  return /mysql\.(proc|event)\b/i.test(stderr) && /(corrupt|doesn't exist|wrong|Cannot load|Incorrect|crashed)/i.test(stderr);
}

/**
 * Dumps the install's database into outFile (created 0600, must not exist), then reads back its
 * SHA-256 and size. Retries once without --routines/--events when mysql.proc is corrupt. On failure
 * the partial file is removed.
 */
export async function dumpDatabase(env: PhpborgEnv, outFile: string, opts: { signal?: AbortSignal } = {}): Promise<DumpResult> {
  const t0 = performance.now();
  return withDefaultsFile(env, async (defaults) => {
    try {
      const first = await dumpOnce(defaults, DUMP_ARGS, env.DB_NAME, outFile, opts.signal);
      if (first.ok) return { file: outFile, ...first.out, routines: true, duration_ms: Math.round(performance.now() - t0) };
      if (!isProcTableError(first.stderr)) throw dumpError(first.stderr, first.code);
      await rm(outFile, { force: true });
      const args = DUMP_ARGS.filter((a) => a !== '--routines' && a !== '--events');
      const second = await dumpOnce(defaults, args, env.DB_NAME, outFile, opts.signal);
      if (!second.ok) throw dumpError(second.stderr, second.code);
      return { file: outFile, ...second.out, routines: false, duration_ms: Math.round(performance.now() - t0) };
    } catch (e) {
      await rm(outFile, { force: true });
      throw e;
    }
  });
}

function dumpError(stderr: string, code: number | string | null): Error {
  const why = stderr.trim().split('\n').filter(Boolean).slice(-3).join(' | ') || `exit ${code}`;
  return new Error(`mariadb-dump failed: ${why}`);
}

type DumpOnce =
  | { ok: true; out: { size_bytes: number; sha256: string }; stderr: string }
  | { ok: false; stderr: string; code: number | string | null };

async function dumpOnce(defaults: string, args: string[], db: string, outFile: string, signal?: AbortSignal): Promise<DumpOnce> {
  signal?.throwIfAborted();
  const fh = await open(outFile, 'wx', 0o600);
  let stderr = '';
  try {
    // straight into the file: a pipe through this process (to hash on the way) made the dump, and so
    // the maintenance window, ~40 % longer than mariadb-dump writing on its own
    // --defaults-extra-file must be the first argument; `--` is not needed: db names never start with '-'
    const child = spawn('mariadb-dump', [`--defaults-extra-file=${defaults}`, ...args, db], {
      env: safeEnv(),
      stdio: ['ignore', fh.fd, 'pipe'],
      signal,
    });
    child.stderr?.on('data', (b: Buffer) => {
      if (stderr.length < 64 * 1024) stderr += b.toString('utf8');
    });
    const { code, sig } = await new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve, reject) => {
      child.on('error', (e) => reject(new Error(`cannot run mariadb-dump: ${e.message}`)));
      child.on('close', (code, sig) => resolve({ code, sig }));
    });
    if (code !== 0) return { ok: false, stderr, code: code ?? sig };
  } finally {
    await fh.close();
  }
  // no fsync: the dump is a journaled temporary, read back at once from the page cache (here to hash
  // it, then into the archive, which is what is made durable); syncing it would only lengthen the window
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(outFile, { highWaterMark: 1 << 20, signal }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { ok: true, out: { size_bytes: size, sha256: hash.digest('hex') }, stderr };
}

/** Runs fn on a fresh connection to the install's database, always closed. */
export async function withConnection<T>(env: PhpborgEnv, fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const conn = await mysql.createConnection(dbConnectionOptions(env));
  try {
    return await fn(conn);
  } finally {
    await conn.end().catch(() => {});
  }
}

/** Exact row count of every base table, by name (COUNT(*): information_schema is approximate). */
export async function tableRowCounts(env: PhpborgEnv): Promise<Record<string, number>> {
  return withConnection(env, async (c) => {
    const [tables] = await c.query(
      "SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    );
    const counts: Record<string, number> = {};
    for (const { t } of tables as { t: string }[]) {
      const [rows] = await c.query(`SELECT COUNT(*) AS n FROM ${c.escapeId(t)}`);
      counts[t] = Number((rows as { n: number | string }[])[0].n);
    }
    return counts;
  });
}

export interface TableStat {
  /** exact row count */
  rows: number;
  /** the single integer primary-key column, when the table has one */
  pk: string | null;
  /** its highest value (null: no such key, or an empty table) */
  max_id: number | null;
}

/**
 * Exact row count and highest primary-key value of every base table. phpBorg's ids are
 * AUTO_INCREMENT, so "rows added since" is later told by ids above max_id: exact, an index range,
 * and immune to migrations that stamp timestamp columns on existing rows.
 */
export async function tableStats(env: PhpborgEnv): Promise<Record<string, TableStat>> {
  return withConnection(env, async (c) => {
    const [tables] = await c.query(
      "SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    );
    const [keys] = await c.query(
      `SELECT k.TABLE_NAME AS t, MIN(k.COLUMN_NAME) AS col, COUNT(*) AS n, MIN(col.DATA_TYPE) AS type
         FROM information_schema.KEY_COLUMN_USAGE k
         JOIN information_schema.COLUMNS col ON col.TABLE_SCHEMA = k.TABLE_SCHEMA AND col.TABLE_NAME = k.TABLE_NAME AND col.COLUMN_NAME = k.COLUMN_NAME
        WHERE k.TABLE_SCHEMA = DATABASE() AND k.CONSTRAINT_NAME = 'PRIMARY'
        GROUP BY k.TABLE_NAME`,
    );
    const intTypes = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'bigint']);
    const pkOf = new Map<string, string>();
    for (const k of keys as { t: string; col: string; n: number | string; type: string }[]) {
      if (Number(k.n) === 1 && intTypes.has(String(k.type).toLowerCase())) pkOf.set(k.t, k.col);
    }
    const out: Record<string, TableStat> = {};
    for (const { t } of tables as { t: string }[]) {
      const pk = pkOf.get(t) ?? null;
      const [rows] = await c.query(`SELECT COUNT(*) AS n${pk ? `, MAX(${c.escapeId(pk)}) AS m` : ''} FROM ${c.escapeId(t)}`);
      const r = (rows as { n: number | string; m?: number | string | null }[])[0];
      out[t] = { rows: Number(r.n), pk, max_id: pk && r.m !== null && r.m !== undefined ? Number(r.m) : null };
    }
    return out;
  });
}

/** Rows whose primary key is above `maxId` (rows added since a dump whose highest id it was). */
export async function rowsAbove(env: PhpborgEnv, wanted: { table: string; pk: string; maxId: number }[]): Promise<Record<string, number | null>> {
  if (!wanted.length) return {};
  return withConnection(env, async (c) => {
    const out: Record<string, number | null> = {};
    for (const w of wanted) {
      try {
        const [rows] = await c.query(`SELECT COUNT(*) AS n FROM ${c.escapeId(w.table)} WHERE ${c.escapeId(w.pk)} > ?`, [w.maxId]);
        out[w.table] = Number((rows as { n: number | string }[])[0].n);
      } catch {
        // the table or its key is gone: unknown, not zero
        out[w.table] = null;
      }
    }
    return out;
  });
}

/** "10.11.6-MariaDB…" from SELECT VERSION(). */
export async function serverVersion(env: PhpborgEnv): Promise<string> {
  return withConnection(env, async (c) => {
    const [rows] = await c.query('SELECT VERSION() AS v');
    return String((rows as { v: string }[])[0].v);
  });
}

export interface PhpborgSettingRow {
  key: string;
  value: string | null;
  category: string | null;
  type: string | null;
  description: string | null;
  updated_at: string | null;
}

/** phpBorg's own `settings` table, ordered by key. */
export async function readSettingsTable(env: PhpborgEnv): Promise<PhpborgSettingRow[]> {
  return withConnection(env, async (c) => {
    const [rows] = await c.query('SELECT * FROM `settings` ORDER BY `key`');
    return (rows as Record<string, unknown>[]).map((r) => ({
      key: String(r.key),
      value: r.value === null || r.value === undefined ? null : String(r.value),
      category: r.category == null ? null : String(r.category),
      type: r.type == null ? null : String(r.type),
      description: r.description == null ? null : String(r.description),
      updated_at: r.updated_at == null ? null : String(r.updated_at),
    }));
  });
}

/** Names of phpBorg `jobs` rows in `running` state (id and type), for the drain. */
export async function runningJobs(env: PhpborgEnv): Promise<{ id: number; type: string }[]> {
  return withConnection(env, async (c) => {
    const [cols] = await c.query(
      "SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'jobs'",
    );
    const names = new Set((cols as { c: string }[]).map((r) => r.c));
    const typeCol = ['type', 'job_type', 'name'].find((n) => names.has(n));
    const sel = typeCol ? `id, ${c.escapeId(typeCol)} AS type` : "id, '' AS type";
    const [rows] = await c.query(`SELECT ${sel} FROM jobs WHERE status = 'running' ORDER BY id`);
    return (rows as { id: number | string; type: string | null }[]).map((r) => ({ id: Number(r.id), type: String(r.type ?? '') }));
  });
}

/** Bytes of data and indexes in the install's database (an estimate of the dump's size). */
export async function databaseSizeEstimate(env: PhpborgEnv): Promise<number> {
  return withConnection(env, async (c) => {
    const [rows] = await c.query(
      'SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()',
    );
    return Number((rows as { n: number | string }[])[0].n);
  });
}
