// Test helpers for the platform: a throw-away install (config + .env + state dir, no sandbox) and
// phpBorg-shaped access tokens. Real code all the way: createRunner() gives real bindings.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sign } from 'hono/jwt';
import { parseConfig, type KeeperConfig } from '../../runtime/config.ts';

export interface TempInstall {
  dir: string;
  configPath: string;
  config: KeeperConfig;
  secret: string;
  cleanup(): void;
}

/**
 * A minimal install under a temp dir: code/.env (DB and Redis pointing at closed ports unless
 * given), state/, storage/, and a keeper.json. The service manager defaults to `true` (every unit
 * "active") so unit-level tests need no sandbox.
 */
export function makeTempInstall(opts: { env?: Record<string, string>; config?: Record<string, unknown> } = {}): TempInstall {
  const dir = mkdtempSync(join(tmpdir(), 'keeper-test-'));
  const secret = 'test-secret-' + Math.random().toString(36).slice(2);
  for (const d of ['code', 'ssh', 'sudoers', 'systemd', 'etc', 'state']) mkdirSync(join(dir, d), { recursive: true });
  const env = { APP_SECRET: secret, DB_HOST: '127.0.0.1', DB_PORT: '1', DB_NAME: 'phpborg', DB_USER: 'phpborg', DB_PASSWORD: 'db-pass', REDIS_HOST: '127.0.0.1', REDIS_PORT: '1', WORKER_POOL_SIZE: '2', ...opts.env };
  writeFileSync(join(dir, 'code', '.env'), Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 });
  const raw = {
    paths: {
      code: join(dir, 'code'),
      ssh: join(dir, 'ssh'),
      sudoers: join(dir, 'sudoers'),
      systemd: join(dir, 'systemd'),
      etc: join(dir, 'etc'),
      storage: join(dir, 'storage'),
      state: join(dir, 'state'),
    },
    service_manager: ['true'],
    phpborg_api: { health_url: 'http://127.0.0.1:1/api/health', login_url: 'http://127.0.0.1:1/api/auth/login' },
    ...opts.config,
  };
  const configPath = join(dir, 'keeper.json');
  writeFileSync(configPath, JSON.stringify(raw, null, 2));
  return { dir, configPath, config: parseConfig(raw), secret, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TokenOptions {
  roles?: string[];
  iss?: string;
  aud?: string;
  /** seconds from now; negative = expired */
  expiresIn?: number;
  sub?: number;
  username?: string;
}

/** A phpBorg-shaped access token (HS256). */
export function accessToken(secret: string, o: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return sign(
    {
      sub: o.sub ?? 1,
      username: o.username ?? 'admin',
      email: 'admin@example.test',
      roles: o.roles ?? ['ROLE_ADMIN'],
      iss: o.iss ?? 'phpborg',
      aud: o.aud ?? 'phpborg-api',
      iat: now,
      exp: now + (o.expiresIn ?? 3600),
    },
    secret,
    'HS256',
  );
}
