// The keeper configuration: one JSON file, validated at start. Defaults are those of a stock phpBorg
// install; every error names the field, the value and what is expected.
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import * as v from 'valibot';
import { errorMessage } from './error-message.ts';

const AbsPath = v.pipe(
  v.string('expected an absolute path (a string)'),
  v.check((p) => isAbsolute(p), 'expected an absolute path'),
);
const Command = v.pipe(
  v.array(v.pipe(v.string(), v.minLength(1)), 'expected a command as an array of arguments, e.g. ["systemctl"]'),
  v.minLength(1, 'expected at least the program name'),
);
const UnitName = v.pipe(v.string(), v.regex(/^[A-Za-z0-9@._:-]+$/, 'expected a systemd unit name'));
const Port = v.pipe(v.number('expected a port number'), v.integer(), v.minValue(1), v.maxValue(65535));

export const ConfigSchema = v.strictObject({
  paths: v.optional(
    v.strictObject({
      /** phpBorg's git checkout, holding .env */
      code: v.optional(AbsPath, '/opt/newphpborg/phpBorg'),
      /** the phpborg user's SSH dir */
      ssh: v.optional(AbsPath, '/var/lib/phpborg/.ssh'),
      /** the phpborg-borg user's SSH dir: its authorized_keys is what every backed-up server pushes with */
      ssh_borg: v.optional(AbsPath, '/var/lib/phpborg-borg/.ssh'),
      /** dirs whose phpborg-* files are backed up */
      sudoers: v.optional(AbsPath, '/etc/sudoers.d'),
      systemd: v.optional(AbsPath, '/etc/systemd/system'),
      /** other config (TLS/agent CA), backed up whole when present */
      etc: v.optional(AbsPath, '/etc/phpborg'),
      /** self-backup storage (dir 0700, files 0600); the backup_storage_path setting overrides it */
      storage: v.optional(AbsPath, '/opt/backups/phpborg-self-backups'),
      /** keeper's own state: the SQLite ledger and the setup token */
      state: v.optional(AbsPath, '/var/lib/phpborg-keeper'),
    }),
    {},
  ),
  /** glob prefix of the sudoers and unit files that belong to phpBorg */
  file_prefix: v.optional(v.string(), 'phpborg-'),
  /** units quiesced around the dump; null = phpborg-scheduler + phpborg-worker@1..WORKER_POOL_SIZE */
  units: v.optional(v.nullable(v.array(UnitName)), null),
  /** units started and checked too, beyond `units` (e.g. the web API) */
  extra_units: v.optional(v.array(UnitName), []),
  /** the service manager, spawned with an argument array */
  service_manager: v.optional(Command, ['systemctl']),
  /** prefix that elevates the single-use helper, e.g. ["sudo", "-n"]; [] when already root */
  helper_prefix: v.optional(v.array(v.string()), []),
  /** owner of restored files; null keeps the archive's / the current owner */
  owner: v.optional(
    v.nullable(v.strictObject({ user: v.pipe(v.string(), v.minLength(1)), group: v.pipe(v.string(), v.minLength(1)) })),
    null,
  ),
  git: v.optional(
    v.strictObject({
      remote: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9._-]+$/, 'expected a git remote name')), 'origin'),
      branch: v.optional(v.pipe(v.string(), v.regex(/^[A-Za-z0-9._/-]+$/, 'expected a git branch name')), 'master'),
    }),
    {},
  ),
  /** phpBorg's web API: health probe target and sign-in endpoint */
  phpborg_api: v.optional(
    v.strictObject({
      health_url: v.optional(v.pipe(v.string(), v.url('expected a URL')), 'http://127.0.0.1/api/health'),
      login_url: v.optional(v.pipe(v.string(), v.url('expected a URL')), 'http://127.0.0.1/api/auth/login'),
    }),
    {},
  ),
  server: v.optional(
    v.strictObject({
      host: v.optional(v.string(), '127.0.0.1'),
      port: v.optional(Port, 8787),
    }),
    {},
  ),
  /** MariaDB administration for bare-metal and emergency restore (root over its socket) */
  mariadb_admin: v.optional(
    v.strictObject({
      socket: v.optional(v.nullable(AbsPath), null),
      host: v.optional(v.string(), '127.0.0.1'),
      port: v.optional(Port, 3306),
      user: v.optional(v.string(), 'root'),
      /** the MariaDB unit the service manager starts when the server is down (emergency / bare-metal restore) */
      unit: v.optional(UnitName, 'mariadb'),
    }),
    {},
  ),
  /** seconds to wait for running phpBorg jobs before a maintenance window */
  drain_timeout_s: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(86400)), 300),
  /** seconds the post-restore / post-update health check retries */
  health_timeout_s: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(3600)), 60),
  upload_max_bytes: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 20 * 1024 ** 3),
  /** commands the install needs (checked after an update) */
  system_dependencies: v.optional(v.array(v.pipe(v.string(), v.regex(/^[A-Za-z0-9._+-]+$/))), ['git', 'tar']),
  /** directory names skipped inside the code dir */
  exclude_dirs: v.optional(v.array(v.string()), ['node_modules', 'cache', 'tmp', 'var/cache', 'var/tmp']),
  /** keeper's own SMTP, used instead of phpBorg's smtp.* settings when given */
  smtp: v.optional(
    v.nullable(
      v.strictObject({
        host: v.string(),
        port: Port,
        secure: v.optional(v.boolean(), false),
        username: v.optional(v.nullable(v.string()), null),
        password_file: v.optional(v.nullable(AbsPath), null),
        from_email: v.string(),
        from_name: v.optional(v.string(), 'phpBorg'),
        to: v.optional(v.nullable(v.string()), null),
      }),
    ),
    null,
  ),
});

export type KeeperConfig = v.InferOutput<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly issues: string[],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** One line per problem: field, value, what is expected. */
export function describeIssues(issues: v.BaseIssue<unknown>[]): string[] {
  return issues.map((issue) => {
    const path = v.getDotPath(issue) ?? '(root)';
    const value = issue.input === undefined ? 'missing' : JSON.stringify(issue.input);
    return `${path}: got ${value}; ${issue.message}`;
  });
}

export function parseConfig(input: unknown, source = 'configuration'): KeeperConfig {
  const r = v.safeParse(ConfigSchema, input);
  if (!r.success) {
    const lines = describeIssues(r.issues);
    throw new ConfigError(`invalid ${source}:\n  ${lines.join('\n  ')}`, lines);
  }
  return r.output;
}

export function loadConfig(file: string): KeeperConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read configuration ${file}: ${errorMessage(e)}`, []);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`configuration ${file} is not valid JSON: ${errorMessage(e)}`, []);
  }
  return parseConfig(json, `configuration ${file}`);
}

/** The config file from --config, else KEEPER_CONFIG; undefined when neither is given. */
export function configPathFromArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): string | undefined {
  const i = argv.indexOf('--config');
  if (i >= 0 && argv[i + 1]) return argv[i + 1];
  const eq = argv.find((a) => a.startsWith('--config='));
  if (eq) return eq.slice('--config='.length);
  return env.KEEPER_CONFIG || undefined;
}
