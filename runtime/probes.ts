// Health probes of the protected install: units, database, Redis, the web API. Used by /api/health,
// and after every restore, rollback and update.
import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';
import mysql from 'mysql2/promise';
import type { KeeperConfig } from './config.ts';
import type { PhpborgEnv } from './install.ts';
import { allUnits } from './install.ts';
import { serviceManager } from './service-manager.ts';
import { errorMessage } from './error-message.ts';
import { redisPing } from './redis-ping.ts';

export interface Check {
  name: string;
  ok: boolean;
  latency_ms: number;
  detail?: string;
  error?: string;
}

/** Runs one check and times it: its return value is the detail, a throw is the error. */
export async function timed(name: string, fn: () => Promise<string | void> | string | void): Promise<Check> {
  const t0 = performance.now();
  try {
    const detail = await fn();
    return { name, ok: true, latency_ms: Math.round(performance.now() - t0), ...(detail ? { detail } : {}) };
  } catch (e) {
    return { name, ok: false, latency_ms: Math.round(performance.now() - t0), error: errorMessage(e) };
  }
}

export function dbConnectionOptions(env: PhpborgEnv): mysql.ConnectionOptions {
  return {
    host: env.DB_HOST,
    port: env.DB_PORT,
    user: env.DB_USER,
    password: env.DB_PASSWORD,
    database: env.DB_NAME,
    ...(env.DB_SOCKET ? { socketPath: env.DB_SOCKET } : {}),
    connectTimeout: 5000,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
  };
}

export function probeDatabase(env: PhpborgEnv): Promise<Check> {
  return timed('database', async () => {
    const conn = await mysql.createConnection(dbConnectionOptions(env));
    try {
      const [rows] = await conn.query('SELECT VERSION() AS v');
      return String((rows as { v: string }[])[0].v);
    } finally {
      await conn.end().catch(() => {});
    }
  });
}

/**
 * The tables a restored database must hold (those the archive listed): a connection that opens on an
 * empty or foreign database is not a restored phpBorg.
 */
export function probeTables(env: PhpborgEnv, tables: string[]): Promise<Check> {
  return timed('database_tables', async () => {
    const conn = await mysql.createConnection(dbConnectionOptions(env));
    try {
      const [rows] = await conn.query('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [env.DB_NAME]);
      const have = new Set((rows as { t: string }[]).map((r) => r.t));
      const missing = tables.filter((t) => !have.has(t));
      if (missing.length) throw new Error(`${env.DB_NAME} lacks ${missing.length} table(s) of the backup: ${missing.slice(0, 10).join(', ')}`);
      return `${tables.length} table(s) present`;
    } finally {
      await conn.end().catch(() => {});
    }
  });
}

export function probeRedis(env: PhpborgEnv): Promise<Check> {
  return timed('redis', () => redisPing({ host: env.REDIS_HOST, port: env.REDIS_PORT, password: env.REDIS_PASSWORD || undefined }));
}

/** The status of GET url, redirects followed (as a browser would, at most 5): node's http client,
 *  not fetch, whose undici a probing process would otherwise load (~10 MiB). */
function httpStatus(url: string, hops = 5): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = (u.protocol === 'https:' ? httpsGet : httpGet)(u, { timeout: 5000 }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      const to = res.headers.location;
      if (status >= 300 && status < 400 && to && hops > 0) resolve(httpStatus(new URL(to, u).href, hops - 1));
      else resolve(status);
    });
    req.on('timeout', () => req.destroy(new Error(`${url} did not answer within 5 s`)));
    req.on('error', reject);
  });
}

export function probeHttp(url: string): Promise<Check> {
  return timed('http', async () => {
    const status = await httpStatus(url);
    if (status < 200 || status > 299) throw new Error(`${url} answered HTTP ${status}`);
    return `HTTP ${status}`;
  });
}

/** One check per unit, from one `is-active` call for all of them. */
export async function probeUnits(config: KeeperConfig, units: string[]): Promise<Check[]> {
  const t0 = performance.now();
  let states: string[];
  try {
    states = await serviceManager(config).states(units);
  } catch (e) {
    const error = errorMessage(e);
    return units.map((u) => ({ name: `unit:${u}`, ok: false, latency_ms: Math.round(performance.now() - t0), error }));
  }
  const latency_ms = Math.round(performance.now() - t0);
  return units.map((u, i) =>
    states[i] === 'active' ? { name: `unit:${u}`, ok: true, latency_ms, detail: 'active' } : { name: `unit:${u}`, ok: false, latency_ms, error: `${u} is ${states[i]}` },
  );
}

export interface InstallHealth {
  ok: boolean;
  checks: Check[];
}

/** Every unit active, a database query, Redis PING, the HTTP probe. */
export async function checkInstall(config: KeeperConfig, env: PhpborgEnv): Promise<InstallHealth> {
  // independent probes: asked at once, the answer takes the slowest one, not their sum
  const [units, ...rest] = await Promise.all([
    probeUnits(config, allUnits(config, env)),
    probeDatabase(env),
    probeRedis(env),
    probeHttp(config.phpborg_api.health_url),
  ]);
  const checks = [...units, ...rest];
  return { ok: checks.every((c) => c.ok), checks };
}

/** Retries checkInstall until it passes or the deadline (config.health_timeout_s) is reached. */
export async function waitHealthy(
  config: KeeperConfig,
  env: PhpborgEnv,
  signal?: AbortSignal,
  extra?: () => Promise<Check[]>,
): Promise<InstallHealth> {
  const deadline = Date.now() + config.health_timeout_s * 1000;
  for (;;) {
    const [h, more] = await Promise.all([checkInstall(config, env), extra ? extra() : []]);
    h.checks.push(...more);
    h.ok = h.checks.every((c) => c.ok);
    if (h.ok || Date.now() >= deadline || signal?.aborted) return h;
    // units just started come up within a few hundred ms: ask again soon
    await new Promise((r) => setTimeout(r, 200));
  }
}
