// The read side of phpBorg's MariaDB (mysql2). The pool is created on first use from .env and
// recreated when .env changes (a restore may bring other credentials) or the connection was lost.
import { statSync } from 'node:fs';
import mysql from 'mysql2/promise';
import type { KeeperConfig } from './config.ts';
import type { PhpborgDb } from './bindings.ts';
import { envPath, readEnv } from './install.ts';
import { dbConnectionOptions } from './probes.ts';

const LOST = new Set(['PROTOCOL_CONNECTION_LOST', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ER_ACCESS_DENIED_ERROR', 'ENOENT']);

export function phpborgDb(config: KeeperConfig): PhpborgDb {
  let pool: mysql.Pool | null = null;
  let stamp = '';

  const envStamp = (): string => {
    try {
      const st = statSync(envPath(config));
      return `${st.mtimeMs}:${st.size}`;
    } catch {
      return 'missing';
    }
  };
  const drop = () => {
    const p = pool;
    pool = null;
    if (p) void p.end().catch(() => {});
  };
  const get = (): mysql.Pool => {
    const s = envStamp();
    if (pool && s === stamp) return pool;
    drop();
    const env = readEnv(config);
    pool = mysql.createPool({ ...dbConnectionOptions(env), connectionLimit: 4, waitForConnections: true, enableKeepAlive: true });
    // an idle connection dying must not crash the process
    pool.on('connection', (conn) => conn.on('error', () => {}));
    stamp = s;
    return pool;
  };

  return {
    async query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
      const p = get();
      try {
        const [rows] = await p.query(sql, params);
        return rows as T[];
      } catch (e) {
        if (LOST.has((e as { code?: string }).code ?? '')) drop();
        throw e;
      }
    },
    async close() {
      const p = pool;
      pool = null;
      if (p) await p.end().catch(() => {});
    },
  };
}
