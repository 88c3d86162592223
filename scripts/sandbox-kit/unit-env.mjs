// Shared by the sandbox's unit processes: read phpBorg's .env (parsed, never executed) and signal
// readiness the way a Type=notify service would.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'dotenv';

export function readDotEnv(code) {
  return parse(readFileSync(join(code, '.env'), 'utf8'));
}

export function dbOptions(env) {
  return {
    host: env.DB_HOST || '127.0.0.1',
    port: Number(env.DB_PORT || 3306),
    user: env.DB_USER,
    password: env.DB_PASSWORD ?? '',
    database: env.DB_NAME,
    connectTimeout: 3000,
    dateStrings: true,
  };
}

export function notifyReady() {
  if (process.env.NOTIFY_FILE) writeFileSync(process.env.NOTIFY_FILE, `${process.pid}\n`);
}

export function log(...parts) {
  process.stdout.write(`${new Date().toISOString()} [${process.env.UNIT_NAME ?? 'unit'}] ${parts.join(' ')}\n`);
}
