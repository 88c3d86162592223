// The sandbox for tests: one disposable phpBorg install per test file (start in `before`, down in `after`).
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { Redis } from 'ioredis';
import { loadConfig, type KeeperConfig } from '../../runtime/config.ts';
import { parseEnv, type PhpborgEnv } from '../../runtime/install.ts';
import { dbConnectionOptions } from '../../runtime/probes.ts';
import { run, type RunResult } from '../../runtime/exec.ts';
import { upSandbox, downSandbox, sandboxToken, adminCredentials, userCredentials, layout, type SandboxInfo, type TokenOptions, type Layout } from '../../scripts/sandbox-kit/index.ts';

export const JOB_QUEUE = 'phpborg:jobs';

export interface StartOptions {
  /** defaults to a fresh mkdtemp under os.tmpdir() */
  dir?: string;
  /** code size in MiB (default 2) */
  size?: number;
  /** WORKER_POOL_SIZE (default 4) */
  workers?: number;
  /** keep DIR on disk after down() (default: remove it when we created it) */
  keep?: boolean;
}

export interface Sandbox {
  dir: string;
  info: SandboxInfo;
  /** every path of the sandbox (code, ssh, mysqlSocket, units, log, …) */
  paths: Layout;
  config: KeeperConfig;
  /** .env as parsed at start; call readEnv() after something rewrote it */
  env: PhpborgEnv;
  rawEnv: Record<string, string>;
  readEnv(): { raw: Record<string, string>; env: PhpborgEnv };
  admin: { username: string; password: string };
  user: { username: string; password: string };
  /** phpBorg-style access token, ROLE_ADMIN by default */
  token(role?: string, opts?: Omit<TokenOptions, 'role'>): Promise<string>;
  /** as the app user from .env (over TCP) */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** as root over the private socket, no password; multiple statements allowed */
  rootQuery<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** DIR/bin/systemctl with these arguments (never throws; look at .code) */
  systemctl(...args: string[]): Promise<RunResult>;
  /** DIR/var/log/systemctl.log, one call per line: `<iso> <verb> <units…> -> ok|exit N` */
  systemctlLog(): string[];
  /** inserts a pending `jobs` row and pushes its id onto phpborg:jobs; returns the id */
  pushJob(opts?: { type?: string; payload?: Record<string, unknown> }): Promise<number>;
  /** how many job ids wait in Redis */
  queueLength(): Promise<number>;
  /** waits until the job's status is `status` (default completed) */
  waitForJob(id: number, status?: string, timeoutMs?: number): Promise<void>;
  /** pids of the sandbox's running units (from DIR/run/units/*.pid) */
  unitPid(unit: string): number | null;
  down(): Promise<void>;
}

function pidOf(L: Layout, unit: string): number | null {
  const f = join(L.units, `${unit}.pid`);
  if (!existsSync(f)) return null;
  return (JSON.parse(readFileSync(f, 'utf8')) as { pid: number }).pid;
}

export async function startSandbox(opts: StartOptions = {}): Promise<Sandbox> {
  const created = !opts.dir;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'phpborg-sandbox-'));
  const quiet = process.env.SANDBOX_VERBOSE ? undefined : () => {};
  let info: SandboxInfo;
  try {
    info = await upSandbox(dir, { size: opts.size, workers: opts.workers, log: quiet });
  } catch (e) {
    await downSandbox(dir).catch(() => {});
    if (created && !opts.keep) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const L = layout(info.dir);
  const readEnv = () => parseEnv(readFileSync(info.env, 'utf8'));
  const first = readEnv();

  const query = async <T>(sql: string, params: unknown[] = []): Promise<T[]> => {
    const conn = await mysql.createConnection(dbConnectionOptions(readEnv().env));
    try {
      const [rows] = await conn.query(sql, params);
      return rows as T[];
    } finally {
      await conn.end().catch(() => {});
    }
  };
  const rootQuery = async <T>(sql: string, params: unknown[] = []): Promise<T[]> => {
    const conn = await mysql.createConnection({ socketPath: L.mysqlSocket, user: 'root', password: '', multipleStatements: true, dateStrings: true, connectTimeout: 5000 });
    try {
      const [rows] = await conn.query(sql, params);
      return rows as T[];
    } finally {
      await conn.end().catch(() => {});
    }
  };
  const withRedis = async <T>(fn: (r: Redis) => Promise<T>): Promise<T> => {
    const { env } = readEnv();
    const r = new Redis({ host: env.REDIS_HOST, port: env.REDIS_PORT, password: env.REDIS_PASSWORD, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
    r.on('error', () => {});
    try {
      await r.connect();
      return await fn(r);
    } finally {
      r.disconnect();
    }
  };

  return {
    dir: info.dir,
    info,
    paths: L,
    config: loadConfig(info.config),
    env: first.env,
    rawEnv: first.raw,
    readEnv,
    admin: adminCredentials(info.dir),
    user: userCredentials(info.dir),
    token: (role, o) => sandboxToken(info.dir, { ...o, role }),
    query,
    rootQuery,
    systemctl: (...args) => run(L.systemctl, args, { timeoutMs: 120_000 }),
    systemctlLog: () => (existsSync(join(L.log, 'systemctl.log')) ? readFileSync(join(L.log, 'systemctl.log'), 'utf8').split('\n').filter(Boolean) : []),
    async pushJob(o = {}) {
      const res = (await query('INSERT INTO jobs (type, status, payload) VALUES (?, ?, ?)', [o.type ?? 'backup', 'pending', JSON.stringify(o.payload ?? { server_id: 1 })])) as unknown as { insertId: number };
      const id = Number(res.insertId);
      await withRedis((r) => r.rpush(JOB_QUEUE, String(id)));
      return id;
    },
    queueLength: () => withRedis((r) => r.llen(JOB_QUEUE)),
    async waitForJob(id, status = 'completed', timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      let last = '?';
      while (Date.now() < deadline) {
        const rows = await query<{ status: string }>('SELECT status FROM jobs WHERE id = ?', [id]);
        last = rows[0]?.status ?? 'missing';
        if (last === status) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`job ${id} is ${last} after ${timeoutMs} ms, expected ${status}`);
    },
    unitPid: (unit) => pidOf(L, unit),
    async down() {
      await downSandbox(info.dir);
      if (created && !opts.keep) rmSync(info.dir, { recursive: true, force: true });
    },
  };
}
