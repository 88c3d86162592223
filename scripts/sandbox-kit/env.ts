// phpBorg's .env: every key of its install/templates/.env.template, with the sandbox's values
// (DIR-rooted paths, private ports). BORG_RSH is quoted and holds spaces, as the installer writes it.

/** the template as it ships (values are the installer's defaults) */
export const ENV_TEMPLATE = `# phpBorg configuration
APP_ENV=production
APP_DEBUG=false
APP_SECRET=

DB_HOST=127.0.0.1
DB_PORT=3306
DB_NAME=phpborg
DB_USER=phpborg
DB_PASSWORD=

REDIS_HOST=127.0.0.1
REDIS_PORT=6379
REDIS_PASSWORD=
REDIS_DB=0

JWT_ACCESS_TOKEN_TTL=3600
JWT_REFRESH_TOKEN_TTL=2592000

LOG_PATH=/var/log/phpborg

BORG_BINARY_PATH=/usr/bin/borg
BORG_BACKUP_PATH=/opt/backups
BORG_RSH="ssh -o StrictHostKeyChecking=accept-new -o ServerAliveInterval=60 -i /var/lib/phpborg/.ssh/id_ed25519"
BORG_BASE_DIR=/var/lib/phpborg/borg
BORG_CACHE_DIR=/var/lib/phpborg/borg/cache

WORKER_POOL_SIZE=4
SCHEDULER_INTERVAL=60
STATS_COLLECTION_INTERVAL=300
`;

/** the keys of the template, in order */
export const ENV_KEYS = ENV_TEMPLATE.split('\n')
  .map((l) => /^([A-Z_][A-Z0-9_]*)=/.exec(l)?.[1])
  .filter((k): k is string => !!k);

export interface EnvValues {
  appSecret: string;
  dbPort: number;
  dbName: string;
  dbUser: string;
  dbPassword: string;
  redisPort: number;
  workers: number;
  /** DIR-rooted paths */
  pool: string;
  ssh: string;
  log: string;
  borgBase: string;
}

export function envText(v: EnvValues): string {
  const values: Record<string, string> = {
    APP_SECRET: v.appSecret,
    DB_PORT: String(v.dbPort),
    DB_NAME: v.dbName,
    DB_USER: v.dbUser,
    DB_PASSWORD: v.dbPassword,
    REDIS_PORT: String(v.redisPort),
    LOG_PATH: v.log,
    BORG_BACKUP_PATH: v.pool,
    BORG_RSH: `"ssh -o StrictHostKeyChecking=accept-new -o ServerAliveInterval=60 -i ${v.ssh}/id_ed25519"`,
    BORG_BASE_DIR: `${v.borgBase}`,
    BORG_CACHE_DIR: `${v.borgBase}/cache`,
    WORKER_POOL_SIZE: String(v.workers),
  };
  return ENV_TEMPLATE.replace(/^([A-Z_][A-Z0-9_]*)=.*$/gm, (line, k: string) => (k in values ? `${k}=${values[k]}` : line));
}
