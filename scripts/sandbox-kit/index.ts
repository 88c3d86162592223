// A complete, disposable phpBorg installation under one directory, laid out
// like a stock install (the paths of runtime/config.ts's defaults, rooted at DIR).
// upSandbox builds it (or restarts it with its data), downSandbox stops every process it started.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, readlinkSync, chmodSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { sign } from 'hono/jwt';
import { run } from '../../runtime/exec.ts';
import { parseEnv } from '../../runtime/install.ts';
import { layout, type Layout } from './layout.ts';
import { readMeta, writeMeta, freePort, portIsFree, type SandboxMeta } from './meta.ts';
import { requireBinaries } from './binaries.ts';
import { buildCode } from './code.ts';
import { initDatadir, rootSql, bootstrapSql } from './mariadb.ts';
import { seedSql, ARCHIVE_ROW_BYTES } from './seed.ts';
import { APPLIED_MIGRATIONS, INSTALL_DATA, INSTALL_SCHEMA, POOL_PATH } from './schema.ts';
import { envText } from './env.ts';
import { writeSshKeys, writeBorgSsh, writePool, writeSudoers, writeUnitFiles, writeEtc } from './system-files.ts';
import { unitSpecs, writeSystemctl } from './units.ts';

export interface SandboxInfo {
  dir: string;
  /** DIR/keeper.json */
  config: string;
  /** phpBorg's code dir (git checkout) */
  code: string;
  /** the code's .env */
  env: string;
}

export interface UpOptions {
  /** code size in MiB (default 2); the database dump grows to about a fifth of it */
  size?: number;
  /** WORKER_POOL_SIZE for a new sandbox (default 4) */
  workers?: number;
  /** progress lines (default: stderr) */
  log?: (line: string) => void;
}

const SERVERS = ['web-prod-01', 'db-prod-01', 'files-nas'];
const DB = { name: 'phpborg', user: 'phpborg' };
const QUIESCE_LAST = ['mariadb', 'redis-server'];

const info = (L: Layout): SandboxInfo => ({ dir: L.dir, config: L.config, code: L.code, env: L.env });

async function systemctl(L: Layout, args: string[]): Promise<void> {
  const r = await run(L.systemctl, args, { timeoutMs: 180_000 });
  if (r.code !== 0) throw new Error(`sandbox systemctl ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
}

function keeperConfig(L: Layout, meta: SandboxMeta): object {
  return {
    paths: { code: L.code, ssh: L.ssh, ssh_borg: L.sshBorg, sudoers: L.sudoers, systemd: L.systemd, etc: L.etc, storage: L.storage, state: L.state },
    units: null,
    extra_units: ['phpborg-api'],
    service_manager: [L.systemctl],
    helper_prefix: [],
    owner: null,
    phpborg_api: { health_url: `http://127.0.0.1:${meta.ports.api}/api/health`, login_url: `http://127.0.0.1:${meta.ports.api}/api/auth/login` },
    server: { host: '127.0.0.1', port: meta.ports.keeper },
    mariadb_admin: { socket: L.mysqlSocket, host: '127.0.0.1', port: meta.ports.mysql, user: 'root' },
    drain_timeout_s: 10,
    health_timeout_s: 20,
  };
}

/** Writes keeper.json; keys a test added (smtp, units, …) survive a restart. */
function writeConfig(L: Layout, meta: SandboxMeta): void {
  let kept: Record<string, unknown> = {};
  try {
    kept = JSON.parse(readFileSync(L.config, 'utf8')) as Record<string, unknown>;
  } catch {
    /* first write, or unreadable: start over */
  }
  writeFileSync(L.config, JSON.stringify({ ...kept, ...keeperConfig(L, meta) }, null, 2) + '\n', { mode: 0o644 });
}

/** Rewrites KEY=value lines of .env in place (ports that had to move on restart). */
function setEnvValues(file: string, values: Record<string, string>): void {
  let text = readFileSync(file, 'utf8');
  for (const [k, v] of Object.entries(values)) {
    const re = new RegExp(`^${k}=.*$`, 'm');
    text = re.test(text) ? text.replace(re, `${k}=${v}`) : `${text}${k}=${v}\n`;
  }
  writeFileSync(file, text);
}

async function fresh(L: Layout, opts: UpOptions, say: (s: string) => void): Promise<SandboxMeta> {
  const size = opts.size ?? 2;
  const workers = opts.workers ?? 4;
  for (const d of [L.bin, L.units, L.log, join(L.log, 'phpborg'), L.redisData, L.storage, L.state]) mkdirSync(d, { recursive: true });
  // keeper's own storage dir (0700): a shared one would only be used as the parent of keeper's subfolder
  chmodSync(L.storage, 0o700);
  const ports = { mysql: await freePort(), redis: await freePort(), api: await freePort(), keeper: await freePort() };
  const pw = () => randomBytes(12).toString('base64url');
  const meta: SandboxMeta = {
    version: 1,
    created_at: new Date().toISOString(),
    complete: false,
    ports,
    admin: { id: 1, username: 'admin', email: 'admin@phpborg.local', password: pw() },
    user: { id: 2, username: 'operator', email: 'operator@phpborg.local', password: pw() },
    units: unitSpecs(L, ports),
  };
  writeMeta(L.meta, meta);
  writeSystemctl(L);
  const secrets = { app: randomBytes(32).toString('hex'), db: pw() };
  say('building code, keys and database');
  const env = envText({
    appSecret: secrets.app,
    dbPort: ports.mysql,
    dbName: DB.name,
    dbUser: DB.user,
    dbPassword: secrets.db,
    redisPort: ports.redis,
    workers,
    pool: L.pool,
    ssh: L.ssh,
    log: join(L.log, 'phpborg'),
    borgBase: join(L.dir, 'var/lib/phpborg/borg'),
  });
  const credentials = `# phpBorg install credentials: keep safe, then delete\nadmin_username=${meta.admin.username}\nadmin_password=${meta.admin.password}\ndb_user=${DB.user}\ndb_password=${secrets.db}\n`;
  writePool(L, SERVERS);
  await Promise.all([
    buildCode({ code: L.code, origin: L.origin, env, credentials, sizeMiB: size }),
    writeSshKeys(L, SERVERS).then(() => writeBorgSsh(L, SERVERS)),
    writeEtc(L),
    (async () => {
      writeSudoers(L);
      writeUnitFiles(L);
      await initDatadir(L);
      await systemctl(L, ['start', 'mariadb', 'redis-server']);
      await rootSql(L, bootstrapSql({ ...DB, password: secrets.db }));
    })(),
  ]);
  say('loading migrations and rows');
  // the code's own migrations, in order: they are what "already applied" means
  const migrations = readdirSync(join(L.code, 'migrations'))
    .filter((f) => f in APPLIED_MIGRATIONS)
    .sort();
  // the installer's schema and data, then the migrations; the pool path is rooted at DIR like every other
  const schema = [INSTALL_SCHEMA, INSTALL_DATA, ...migrations.map((f) => readFileSync(join(L.code, 'migrations', f), 'utf8'))]
    .join('\n')
    .replaceAll(`'${POOL_PATH}'`, `'${L.pool}'`);
  const archives = Math.max(60, Math.round((size * 1024 * 1024) / 5 / ARCHIVE_ROW_BYTES));
  await rootSql(L, schema + seedSql({ pool: L.pool, sshDir: L.ssh, servers: SERVERS, admin: meta.admin, user: meta.user, archives }), DB.name);
  writeConfig(L, meta);
  return meta;
}

/** Keeps each port if its unit still holds it or nobody does; else picks a new one and rewrites .env. */
async function reusePorts(L: Layout, meta: SandboxMeta): Promise<SandboxMeta> {
  const owner: Record<keyof SandboxMeta['ports'], string | null> = { mysql: 'mariadb', redis: 'redis-server', api: 'phpborg-api', keeper: null };
  const ports = { ...meta.ports };
  for (const key of Object.keys(ports) as (keyof SandboxMeta['ports'])[]) {
    const unit = owner[key];
    const held = unit ? (await run(L.systemctl, ['is-active', '--quiet', unit])).code === 0 : false;
    if (!held && !(await portIsFree(ports[key]))) ports[key] = await freePort();
  }
  const moved = JSON.stringify(ports) !== JSON.stringify(meta.ports);
  const next = { ...meta, ports, units: unitSpecs(L, ports) };
  if (moved) setEnvValues(L.env, { DB_PORT: String(ports.mysql), REDIS_PORT: String(ports.redis) });
  return next;
}

export async function upSandbox(dir: string, opts: UpOptions = {}): Promise<SandboxInfo> {
  const say = opts.log ?? ((s: string) => process.stderr.write(`sandbox: ${s}\n`));
  await requireBinaries();
  const L = layout(resolve(dir));
  const t0 = Date.now();
  let meta = readMeta(L.meta);
  if (meta && !meta.complete) {
    say(`${L.dir} holds a half-built sandbox; rebuilding it`);
    await downSandbox(L.dir).catch(() => {});
    for (const e of readdirSync(L.dir)) rmSync(join(L.dir, e), { recursive: true, force: true });
    meta = null;
  }
  if (!meta) {
    mkdirSync(L.dir, { recursive: true });
    if (readdirSync(L.dir).length) throw new Error(`${L.dir} is not empty and holds no sandbox; give an empty or new directory`);
    meta = await fresh(L, opts, say);
  } else {
    say(`restarting the sandbox in ${L.dir}`);
    writeSystemctl(L);
    meta = await reusePorts(L, meta);
    writeMeta(L.meta, meta);
    writeConfig(L, meta);
    mkdirSync(join(L.dir, 'run/mysqld/tmp'), { recursive: true });
    await systemctl(L, ['start', 'mariadb', 'redis-server']);
  }
  await systemctl(L, ['start', 'phpborg-api', 'phpborg-scheduler', 'phpborg-workers.target']);
  if (!meta.complete) writeMeta(L.meta, { ...meta, complete: true });
  say(`up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return info(L);
}

/** units with a pidfile, workers and web first, the database and Redis last */
function runningUnits(L: Layout): string[] {
  if (!existsSync(L.units)) return [];
  const units = readdirSync(L.units)
    .filter((f) => f.endsWith('.pid'))
    .map((f) => f.slice(0, -4));
  return units.sort((a, b) => Number(QUIESCE_LAST.includes(a)) - Number(QUIESCE_LAST.includes(b)));
}

/** Processes whose command line names the sandbox dir (strays a lost pidfile would hide). */
function strays(dir: string): number[] {
  // never ourselves or an ancestor (tsx's parent process carries DIR in its argv too)
  const me = new Set<number>();
  for (let pid = process.pid; pid > 1 && !me.has(pid); ) {
    me.add(pid);
    try {
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || me.has(Number(e))) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (cmd.split('\0').some((a) => a === dir || a.startsWith(`${dir}/`) || a.includes(`=${dir}/`))) out.push(Number(e));
      else if (readlinkSync(`/proc/${e}/cwd`).startsWith(`${dir}/`) && cmd.includes('sandbox-kit')) out.push(Number(e));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

export async function downSandbox(dir: string): Promise<void> {
  const L = layout(resolve(dir));
  if (!existsSync(L.meta)) return;
  if (existsSync(L.systemctl)) {
    const units = runningUnits(L);
    const front = units.filter((u) => !QUIESCE_LAST.includes(u));
    if (front.length) await systemctl(L, ['stop', ...front]);
    const back = runningUnits(L);
    if (back.length) await systemctl(L, ['stop', ...back]);
  }
  const left = strays(L.dir);
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

export interface TokenOptions {
  role?: string;
  /** seconds (default 3600) */
  expiresIn?: number;
  /** sign with this secret instead of the sandbox's APP_SECRET (to test rejection) */
  secret?: string;
  aud?: string;
}

/** A phpBorg-style access token: HS256 with APP_SECRET, iss phpborg, aud phpborg-api. */
export async function sandboxToken(dir: string, opts: TokenOptions = {}): Promise<string> {
  const L = layout(resolve(dir));
  const meta = readMeta(L.meta);
  if (!meta) throw new Error(`${L.dir} holds no sandbox; run scripts/sandbox up ${dir}`);
  const { env } = parseEnv(readFileSync(L.env, 'utf8'));
  const role = opts.role ?? 'ROLE_ADMIN';
  const u = role === 'ROLE_ADMIN' ? meta.admin : meta.user;
  const now = Math.floor(Date.now() / 1000);
  return sign(
    { sub: String(u.id), username: u.username, email: u.email, roles: [role], iss: 'phpborg', aud: opts.aud ?? 'phpborg-api', iat: now, exp: now + (opts.expiresIn ?? 3600) },
    opts.secret ?? env.APP_SECRET,
    'HS256',
  );
}

/** The seeded admin's sign-in (POST it to phpborg_api.login_url). */
export function adminCredentials(dir: string): { username: string; password: string } {
  const meta = readMeta(layout(resolve(dir)).meta);
  if (!meta) throw new Error(`${dir} holds no sandbox`);
  return { username: meta.admin.username, password: meta.admin.password };
}

/** The seeded ROLE_USER's sign-in. */
export function userCredentials(dir: string): { username: string; password: string } {
  const meta = readMeta(layout(resolve(dir)).meta);
  if (!meta) throw new Error(`${dir} holds no sandbox`);
  return { username: meta.user.username, password: meta.user.password };
}

export { layout, type Layout } from './layout.ts';
export { readMeta, type SandboxMeta } from './meta.ts';
export { encryptSetting } from './seed.ts';
