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

// An off-site target. Every field that reaches an ssh/sftp/rclone argument or a remote shell word
// is pinned to a safe alphabet here, so nothing a config holds can become an option or a shell word.
const TargetName = v.pipe(v.string('expected a target name'), v.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected a target name (letters, digits, . _ -)'));
const Keep = v.optional(v.nullable(v.pipe(v.number('expected a number of archives'), v.integer(), v.minValue(1), v.maxValue(500))), null);
const BwLimit = v.optional(v.nullable(v.pipe(v.number('expected kbit/s'), v.integer(), v.minValue(8))), null);
const RemotePath = v.pipe(
  v.string('expected an absolute remote path'),
  v.regex(/^\/[A-Za-z0-9._\/+@-]*$/, 'expected an absolute remote path of letters, digits and . _ / + @ -'),
);
export const SftpTargetSchema = v.strictObject({
  name: TargetName,
  kind: v.literal('sftp'),
  host: v.pipe(v.string('expected a host name'), v.regex(/^[A-Za-z0-9._:-]+$/, 'expected a host name or address'), v.check((h) => !h.startsWith('-'), 'expected a host name')),
  port: v.optional(Port, 22),
  user: v.pipe(v.string('expected a user name'), v.regex(/^[A-Za-z0-9._][A-Za-z0-9._-]*$/, 'expected a user name')),
  path: RemotePath,
  /** the private key (its passphrase-less file; never copied, never logged) */
  key_file: AbsPath,
  /** the pinned host key(s): the host is refused unless it is listed here */
  known_hosts: AbsPath,
  /** archives per type kept there; null = as many as locally (backup_retention_count) */
  keep: Keep,
  enabled: v.optional(v.boolean(), true),
  /** bandwidth cap of the copy (kbit/s); null = none */
  bwlimit_kbps: BwLimit,
});
export const RcloneTargetSchema = v.strictObject({
  name: TargetName,
  kind: v.literal('rclone'),
  /** `<remote>:<path>` of the rclone configuration file */
  remote: v.pipe(v.string('expected an rclone remote'), v.regex(/^[A-Za-z0-9_][A-Za-z0-9._ -]*:[A-Za-z0-9._\/+@ -]*$/, 'expected "<remote>:<path>" (e.g. s3:my-bucket/phpborg)')),
  /** rclone's own configuration: keeper passes it to rclone and never reads it */
  config_file: AbsPath,
  keep: Keep,
  enabled: v.optional(v.boolean(), true),
  bwlimit_kbps: BwLimit,
});
export const OffsiteTargetSchema = v.variant('kind', [SftpTargetSchema, RcloneTargetSchema], 'expected kind "sftp" or "rclone"');
export type SftpTarget = v.InferOutput<typeof SftpTargetSchema>;
export type RcloneTarget = v.InferOutput<typeof RcloneTargetSchema>;
export type OffsiteTarget = v.InferOutput<typeof OffsiteTargetSchema>;

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
  /** where every successful backup is copied as well (docs: README, Off-site copies) */
  offsite: v.optional(
    v.pipe(
      v.array(OffsiteTargetSchema),
      v.check((ts) => new Set(ts.map((t) => t.name)).size === ts.length, 'expected each target name once'),
    ),
    [],
  ),
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

/** The field names a strict object at `keys` (a path into the configuration) accepts. */
function knownFields(keys: string[]): string[] {
  let schema: unknown = ConfigSchema;
  for (const k of [...keys, null]) {
    // optional/nullable wrap their schema in `wrapped`, pipes keep it first in `pipe`
    for (let i = 0; i < 5 && schema && typeof schema === 'object'; i++) {
      const s = schema as { wrapped?: unknown; pipe?: unknown[] };
      if (s.wrapped) schema = s.wrapped;
      else if (Array.isArray(s.pipe)) schema = s.pipe[0];
      else break;
    }
    const entries = (schema as { entries?: Record<string, unknown> } | null)?.entries;
    if (!entries) return [];
    if (k === null) return Object.keys(entries);
    schema = entries[k];
  }
  return [];
}

/** Edit distance, for "did you mean": a typo is one or two edits away from the field meant. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const swap = i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1] ? d[i - 2]![j - 2]! + 1 : Infinity;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost, swap);
    }
  }
  return d[a.length]![b.length]!;
}

/** "unknown field paths.stroage; did you mean storage?" rather than valibot's "Expected never". */
function unknownField(issue: v.BaseIssue<unknown>): string | null {
  if (issue.type !== 'strict_object' || issue.expected !== 'never' || !issue.path?.length) return null;
  const keys = issue.path.map((p) => String(p.key));
  const name = keys.at(-1)!;
  const where = keys.slice(0, -1);
  const known = knownFields(where);
  const best = known.map((k) => [k, distance(name.toLowerCase(), k.toLowerCase())] as const).sort((x, y) => x[1] - y[1])[0];
  const field = [...where, name].join('.');
  const hint = best && best[1] <= Math.max(2, Math.floor(name.length / 3)) ? `; did you mean ${best[0]}?` : known.length ? `; known fields: ${known.join(', ')}` : '';
  return `unknown field ${field}${hint}`;
}

/** One line per problem: field, value, what is expected. */
export function describeIssues(issues: v.BaseIssue<unknown>[]): string[] {
  return issues.map((issue) => {
    const unknown = unknownField(issue);
    if (unknown) return unknown;
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
