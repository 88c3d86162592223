// What keeper learns about the protected install from phpBorg's own .env: parsed, never executed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'dotenv';
import * as v from 'valibot';
import type { KeeperConfig } from './config.ts';
import { errorMessage } from './error-message.ts';

const Int = (fallback: string) =>
  v.pipe(v.optional(v.string(), fallback), v.regex(/^\d+$/, 'expected a whole number'), v.transform(Number));

export const PhpborgEnvSchema = v.object({
  DB_HOST: v.optional(v.string(), '127.0.0.1'),
  DB_PORT: Int('3306'),
  // DB_NAME is a positional argument of mariadb-dump and mariadb: one starting with '-' would be read
  // as an option (e.g. --plugin-dir), and an archive's .env is used by a restore.
  DB_NAME: v.pipe(v.string('DB_NAME is required in .env'), v.minLength(1), v.regex(/^[^-\0][^\0]*$/, 'DB_NAME must not start with "-"')),
  DB_USER: v.pipe(v.string('DB_USER is required in .env'), v.minLength(1)),
  DB_PASSWORD: v.optional(v.string(), ''),
  DB_SOCKET: v.optional(v.string()),
  REDIS_HOST: v.optional(v.string(), '127.0.0.1'),
  REDIS_PORT: Int('6379'),
  REDIS_PASSWORD: v.optional(v.string()),
  APP_SECRET: v.pipe(v.string('APP_SECRET is required in .env'), v.minLength(1)),
  APP_TIMEZONE: v.optional(v.string()),
  WORKER_POOL_SIZE: Int('4'),
});
export type PhpborgEnv = v.InferOutput<typeof PhpborgEnvSchema>;

export function envPath(config: KeeperConfig): string {
  return join(config.paths.code, '.env');
}

/** Parses .env text; the raw map is kept for diffs, the typed view for use. */
export function parseEnv(text: string): { raw: Record<string, string>; env: PhpborgEnv } {
  const raw = parse(text);
  const r = v.safeParse(PhpborgEnvSchema, raw);
  if (!r.success) {
    const msg = r.issues.map((i) => `${v.getDotPath(i) ?? '?'}: ${i.message}`).join('; ');
    throw new Error(`phpBorg .env is incomplete: ${msg}`);
  }
  return { raw, env: r.output };
}

export function readEnv(config: KeeperConfig): PhpborgEnv {
  const file = envPath(config);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read phpBorg's .env at ${file}: ${errorMessage(e)}`);
  }
  return parseEnv(text).env;
}

/** The units quiesced around the dump: configured, or scheduler + one worker per WORKER_POOL_SIZE. */
export function maintenanceUnits(config: KeeperConfig, env: Pick<PhpborgEnv, 'WORKER_POOL_SIZE'>): string[] {
  if (config.units) return config.units;
  const workers = Array.from({ length: env.WORKER_POOL_SIZE }, (_, i) => `phpborg-worker@${i + 1}`);
  return ['phpborg-scheduler', ...workers];
}

/** Every unit keeper starts and health-checks. */
export function allUnits(config: KeeperConfig, env: Pick<PhpborgEnv, 'WORKER_POOL_SIZE'>): string[] {
  return [...new Set([...maintenanceUnits(config, env), ...config.extra_units])];
}

/** keeper's own files (its unit, its sudoers line) share phpBorg's prefix but are never phpBorg's. */
export const KEEPER_FILE = 'phpborg-keeper';

/**
 * Whether `name` in sudoers.d or the systemd dir is one of phpBorg's files: the prefix, and not one of
 * keeper's own (a restore of an archive taken before keeper was installed must not remove keeper).
 */
export function isPhpborgFile(name: string, prefix: string): boolean {
  return name.startsWith(prefix) && !name.startsWith(KEEPER_FILE);
}
