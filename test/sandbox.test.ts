// The sandbox is what every other test stands on: real MariaDB, Redis, git, workers and systemctl.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { verify } from 'hono/jwt';
import { Redis } from 'ioredis';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import { runOk, run } from '../runtime/exec.ts';
import { serviceManager } from '../runtime/service-manager.ts';
import { downSandbox, upSandbox, readMeta, encryptSetting } from '../scripts/sandbox-kit/index.ts';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..');

/** Every process (but this one) whose command line or working dir is in `dir`, or whose environment has SANDBOX_DIR=dir. */
function processesOf(dir: string): string[] {
  const found: string[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      const env = readFileSync(`/proc/${p}/environ`, 'utf8').split('\0');
      const cwd = readlinkSync(`/proc/${p}/cwd`);
      if (cmd.includes(dir) || env.includes(`SANDBOX_DIR=${dir}`) || cwd === dir || cwd.startsWith(dir + '/')) found.push(`${p}: ${cmd}`);
    } catch {
      /* gone meanwhile, or not ours to read */
    }
  }
  return found;
}

function alive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !st.slice(st.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

const git = (sb: Sandbox, ...args: string[]) => runOk('git', args, { cwd: sb.config.paths.code }).then((s) => s.trim());
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('sandbox', () => {
  let sb: Sandbox;
  let other: Sandbox | undefined;
  const units = ['mariadb', 'redis-server', 'phpborg-api', 'phpborg-scheduler', 'phpborg-worker@1', 'phpborg-worker@2', 'phpborg-worker@3'];

  before(async () => {
    sb = await startSandbox({ workers: 3 });
  });
  after(async () => {
    await other?.down();
    await sb?.down();
  });

  it('writes a keeper config that validates and points inside DIR', () => {
    const c = sb.config;
    for (const p of Object.values(c.paths)) assert.ok(p.startsWith(sb.dir + '/'), `${p} is under ${sb.dir}`);
    assert.equal(c.paths.state, join(sb.dir, 'var/lib/phpborg-keeper'));
    assert.deepEqual(c.service_manager, [join(sb.dir, 'bin/systemctl')]);
    assert.deepEqual(c.extra_units, ['phpborg-api']);
    assert.equal(c.mariadb_admin.socket, join(sb.dir, 'run/mysqld/mysqld.sock'));
    assert.equal(sb.env.WORKER_POOL_SIZE, 3);
    assert.equal(sb.env.DB_NAME, 'phpborg');
    assert.equal(statSync(sb.info.env).mode & 0o777, 0o640);
  });

  it('runs every unit, and systemctl answers like systemd', async () => {
    const sm = serviceManager(sb.config);
    for (const u of units) assert.equal(await sm.state(u), 'active', u);
    assert.equal((await sb.systemctl('is-active', '--quiet', 'phpborg-workers.target')).code, 0);
    const unknown = await sb.systemctl('start', 'nope');
    assert.equal(unknown.code, 5);
    assert.match(unknown.stderr, /Unit nope\.service not found/);
    const notActive = await sb.systemctl('is-active', 'phpborg-worker@9');
    assert.equal(notActive.code, 3);
    assert.equal(notActive.stdout.trim(), 'inactive');
    assert.ok(sb.systemctlLog().some((l) => /^\d{4}-\d\d-\d\dT.* start mariadb redis-server -> ok$/.test(l)));
  });

  it('holds a database with phpBorg tables and rows, reachable as the app user and as root', async () => {
    const tables = (await sb.query<{ t: string }>('SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE()')).map((r) => r.t).sort();
    for (const t of ['archives', 'backup_jobs', 'jobs', 'phpborg_backups', 'refresh_tokens', 'repository', 'role_permissions', 'servers', 'settings', 'storage_pools', 'users']) assert.ok(tables.includes(t), t);
    const [counts] = await sb.query<Record<string, string>>(
      'SELECT (SELECT COUNT(*) FROM servers) s, (SELECT COUNT(*) FROM archives) a, (SELECT COUNT(*) FROM users) u, (SELECT COUNT(*) FROM jobs) j, (SELECT COUNT(*) FROM settings) st',
    );
    assert.ok(Number(counts.s) >= 3 && Number(counts.a) >= 60 && Number(counts.u) === 2 && Number(counts.j) > 10 && Number(counts.st) >= 19, JSON.stringify(counts));
    const admins = await sb.query<{ username: string }>("SELECT username FROM users WHERE JSON_CONTAINS(roles, '\"ROLE_ADMIN\"')");
    assert.deepEqual(admins.map((a) => a.username), [sb.admin.username]);
    const keys = (await sb.query<{ key: string; value: string }>('SELECT `key`, value FROM settings')).reduce<Record<string, string>>((m, r) => ((m[r.key] = r.value), m), {});
    assert.equal(keys['app.language'], 'fr');
    assert.equal(keys['app.timezone'], 'Europe/Paris');
    assert.equal(keys.backup_storage_path, sb.paths.pool);
    assert.equal(keys['smtp.password'], '');
    assert.equal(keys.backup_encryption_passphrase, '');
    const cols = (await sb.query<{ c: string }>("SELECT column_name c FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'archives'")).map((r) => r.c);
    assert.ok(cols.includes('start') && cols.includes('end') && !cols.includes('created_at'));
    const [root] = await sb.rootQuery<{ u: string }>('SELECT CURRENT_USER() u');
    assert.equal(root.u, 'root@localhost');
  });

  it('decrypts smtp.password the way phpBorg encrypts it', async () => {
    const { createDecipheriv, createHash } = await import('node:crypto');
    await sb.query("UPDATE settings SET value = ? WHERE `key` = 'smtp.password'", [encryptSetting('smtp-secret', sb.env.APP_SECRET)]);
    const [row] = await sb.query<{ value: string }>("SELECT value FROM settings WHERE `key` = 'smtp.password'");
    await sb.query("UPDATE settings SET value = '' WHERE `key` = 'smtp.password'");
    const raw = Buffer.from(row.value, 'base64');
    const d = createDecipheriv('aes-256-cbc', createHash('sha256').update(sb.env.APP_SECRET).digest(), raw.subarray(0, 16));
    assert.equal(Buffer.concat([d.update(raw.subarray(16)), d.final()]).toString('utf8'), 'smtp-secret');
  });

  it('has Redis on its own port', async () => {
    assert.notEqual(sb.env.REDIS_PORT, 6379);
    assert.notEqual(sb.env.DB_PORT, 3306);
    const r = new Redis({ host: sb.env.REDIS_HOST, port: sb.env.REDIS_PORT, lazyConnect: true });
    await r.connect();
    assert.equal(await r.ping(), 'PONG');
    r.disconnect();
  });

  it('holds a git checkout 2 commits behind its origin, clean, with versions from tags', async () => {
    assert.equal(await git(sb, 'status', '--porcelain'), '');
    assert.equal(await git(sb, 'describe', '--tags', '--always'), 'v1.2.3');
    assert.equal(await git(sb, 'rev-list', '--count', 'HEAD..origin/master'), '2');
    assert.equal(await git(sb, 'describe', '--tags', '--always', 'origin/master'), 'v1.3.0');
    assert.equal(await git(sb, 'remote', 'get-url', 'origin'), join(sb.dir, 'git/phpBorg.git'));
    const incoming = await git(sb, 'diff', '--name-only', 'HEAD', 'origin/master');
    assert.match(incoming, /^migrations\/004_add_servers_timestamps\.sql$/m);
    assert.match(incoming, /^frontend\/src\//m);
    const code = sb.config.paths.code;
    for (const f of ['api/public/index.php', 'composer.json', 'composer.lock', 'frontend/package.json', 'frontend/package-lock.json', 'frontend/dist/index.html', 'var/cache', 'frontend/node_modules', 'migrations/001_create_phpborg_backups.sql']) {
      assert.ok(existsSync(join(code, f)), f);
    }
    assert.ok(lstatSync(join(code, 'vendor/bin/console')).isSymbolicLink());
    assert.equal(readlinkSync(join(code, 'vendor/bin/console')), '../symfony/console/bin/console');
  });

  it('has SSH keys, sudoers, unit files and /etc/phpborg with the right modes', () => {
    const c = sb.config.paths;
    assert.equal(statSync(c.ssh).mode & 0o777, 0o700);
    assert.equal(statSync(join(c.ssh, 'id_ed25519')).mode & 0o777, 0o600);
    assert.match(readFileSync(join(c.ssh, 'authorized_keys'), 'utf8'), /^ssh-ed25519 /);
    assert.ok(existsSync(join(c.ssh, 'keys/web-prod-01/id_ed25519.pub')));
    assert.match(readFileSync(join(c.etc, 'certs/ca.crt'), 'utf8'), /BEGIN CERTIFICATE/);
  });

  it('is shaped like a real phpBorg install: tables, columns, settings, files, users, units, sudoers', async () => {
    const cols = async (t: string) =>
      (await sb.query<{ c: string }>('SELECT column_name c FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?', [t])).map((r) => r.c);
    const has = async (t: string, want: string[], not: string[] = []) => {
      const c = await cols(t);
      for (const w of want) assert.ok(c.includes(w), `${t}.${w}`);
      for (const n of not) assert.ok(!c.includes(n), `no ${t}.${n}`);
    };
    await has('servers', ['id', 'name', 'host', 'backuptype', 'port', 'ssh_pub_key', 'ssh_private_key_path', 'ssh_keys_deployed', 'backup_server_user', 'active'], ['hostname', 'created_at', 'updated_at']);
    assert.ok((await cols('servers')).some((c) => c.startsWith('capabilities_')));
    await has('archives', ['id', 'repo_id', 'server_id', 'nom', 'archive_id', 'backup_config', 'dur', 'start', 'end', 'nfiles'], ['name', 'created_at']);
    await has('users', ['id', 'username', 'password', 'email', 'roles', 'active', 'created_at', 'last_login_at']);
    await has('settings', ['id', 'key', 'value', 'category', 'type', 'description', 'updated_at']);
    await has('phpborg_backups', ['id', 'filename', 'filepath', 'size_bytes', 'encrypted', 'hash_sha256', 'phpborg_version', 'php_version', 'mysql_version', 'node_version', 'borg_version', 'created_at', 'created_by', 'backup_type', 'notes']);
    const [bt] = await sb.query<{ t: string }>("SELECT column_type t FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'phpborg_backups' AND column_name = 'backup_type'");
    assert.equal(bt.t, "enum('manual','pre_update','scheduled')");
    await has('jobs', ['id', 'queue', 'type', 'payload', 'status', 'worker_id', 'progress', 'attempts', 'max_attempts', 'output', 'error', 'started_at', 'completed_at', 'created_at', 'created_by']);
    for (const t of ['repository', 'storage_pools', 'backup_jobs', 'refresh_tokens', 'role_permissions']) assert.ok((await cols(t)).includes('id'), t);
    // settings as migration 001 and the installer seed them
    const rows = await sb.query<{ key: string; value: string; category: string; type: string }>('SELECT `key`, value, category, type FROM settings');
    const set = new Map(rows.map((r) => [r.key, r]));
    const want: Record<string, string> = { backup_storage_path: sb.paths.pool, backup_encryption_enabled: '0', backup_encryption_passphrase: '', backup_retention_count: '3', backup_scheduled_enabled: '1', backup_scheduled_day: 'sunday', backup_scheduled_time: '02:00', backup_notify_email: '1' };
    for (const [k, v] of Object.entries(want)) {
      assert.equal(set.get(k)?.value, v, k);
      assert.equal(set.get(k)?.category, 'backup', k);
    }
    assert.equal(set.get('backup_encryption_passphrase')?.type, 'password');
    for (const k of ['app.name', 'app.timezone', 'app.language', 'setup.completed', 'notification.email', 'backup.retention.daily', 'backup.retention.weekly', 'backup.retention.monthly', 'backup.retention.yearly'])
      assert.ok(set.has(k), k);
    for (const k of ['enabled', 'host', 'port', 'username', 'password', 'encryption', 'from_email', 'from_name']) assert.equal(set.get(`smtp.${k}`)?.category, 'smtp', k);
    assert.equal(set.get('smtp.password')?.value, '');
    // files
    const c = sb.config.paths;
    for (const f of ['api/public/index.php', 'src', 'bin', 'frontend/package.json', 'frontend/dist', 'frontend/node_modules', 'vendor/autoload.php', 'composer.json', 'composer.lock', 'migrations', 'install/schema.sql', 'install/data.sql', 'install/templates/.env.template', 'install/systemd', 'install/sudoers.d', 'systemd', 'var'])
      assert.ok(existsSync(join(c.code, f)), f);
    assert.ok(!existsSync(join(c.code, 'public')), 'no top-level public/');
    assert.ok(readdirSync(join(c.code, 'migrations')).every((m) => /^\d{3}_.+\.sql$/.test(m)));
    assert.equal(statSync(join(c.code, '.env')).mode & 0o777, 0o640);
    assert.equal(statSync(join(c.code, '.install-credentials')).mode & 0o777, 0o600);
    const template = readFileSync(join(c.code, 'install/templates/.env.template'), 'utf8');
    const envKeys = readFileSync(sb.info.env, 'utf8').split('\n').map((l) => /^([A-Z_0-9]+)=/.exec(l)?.[1]).filter(Boolean);
    const keys = ['APP_ENV', 'APP_DEBUG', 'APP_SECRET', 'DB_HOST', 'DB_PORT', 'DB_NAME', 'DB_USER', 'DB_PASSWORD', 'REDIS_HOST', 'REDIS_PORT', 'REDIS_PASSWORD', 'REDIS_DB', 'JWT_ACCESS_TOKEN_TTL', 'JWT_REFRESH_TOKEN_TTL', 'LOG_PATH', 'BORG_BINARY_PATH', 'BORG_BACKUP_PATH', 'BORG_RSH', 'BORG_BASE_DIR', 'BORG_CACHE_DIR', 'WORKER_POOL_SIZE', 'SCHEDULER_INTERVAL', 'STATS_COLLECTION_INTERVAL'];
    for (const k of keys) {
      assert.ok(envKeys.includes(k), `.env has ${k}`);
      assert.match(template, new RegExp(`^${k}=`, 'm'), `template has ${k}`);
    }
    assert.match(readFileSync(sb.info.env, 'utf8'), /^BORG_RSH="ssh -o [^"]* -i [^"]*\/id_ed25519"$/m);
    assert.equal(sb.rawEnv.BORG_BACKUP_PATH, sb.paths.pool);
    // users' SSH dirs, the pool
    assert.equal(c.ssh, join(sb.dir, 'var/lib/phpborg/.ssh'));
    for (const f of ['id_ed25519', 'id_ed25519.pub', 'known_hosts']) assert.ok(existsSync(join(c.ssh, f)), f);
    assert.equal(c.ssh_borg, join(sb.dir, 'var/lib/phpborg-borg/.ssh'));
    assert.equal(statSync(c.ssh_borg).mode & 0o777, 0o700);
    assert.equal(statSync(join(c.ssh_borg, 'authorized_keys')).mode & 0o777, 0o600);
    assert.match(readFileSync(join(c.ssh_borg, 'authorized_keys'), 'utf8'), /^command="borg serve [^"]*",restrict ssh-ed25519 /m);
    assert.equal(sb.paths.pool, join(sb.dir, 'opt/backups'));
    assert.equal(statSync(sb.paths.pool).mode & 0o777, 0o775);
    for (const s of ['web-prod-01', 'db-prod-01', 'files-nas']) assert.ok(existsSync(join(sb.paths.pool, s, 'backup/config')), s);
    assert.equal(c.storage, join(sb.paths.pool, 'phpborg-self-backups'));
    // units, sudoers, /etc/phpborg
    for (const f of ['phpborg-scheduler.service', 'phpborg-worker@.service', 'phpborg-workers.target', 'phpborg-restart.path', 'phpborg-restart.service']) assert.ok(existsSync(join(c.systemd, f)), f);
    for (const f of ['phpborg-workers', 'phpborg-backup-server', 'phpborg-agent-worker', 'phpborg-www-data', 'phpborg-agent']) assert.equal(statSync(join(c.sudoers, f)).mode & 0o777, 0o440, f);
    assert.ok(existsSync(join(c.etc, 'certs')) && existsSync(join(c.etc, 'ssl')));
  });

  it('answers health and sign-in like phpBorg, and fails health on api/public/HEALTH_FAIL', async () => {
    const health = sb.config.phpborg_api.health_url;
    assert.equal((await fetch(health)).status, 200);
    const flag = join(sb.config.paths.code, 'api/public/HEALTH_FAIL');
    writeFileSync(flag, '');
    try {
      assert.equal((await fetch(health)).status, 503);
    } finally {
      rmSync(flag);
    }
    const login = (body: object) => fetch(sb.config.phpborg_api.login_url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const ok = await login(sb.admin);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get('access-control-allow-origin'), '*');
    const body = (await ok.json()) as { success: boolean; data: { access_token: string; user: { roles: string[] } } };
    assert.equal(body.success, true);
    assert.deepEqual(body.data.user.roles, ['ROLE_ADMIN']);
    const claims = await verify(body.data.access_token, sb.env.APP_SECRET, 'HS256');
    assert.equal(claims.aud, 'phpborg-api');
    assert.equal((await login({ ...sb.admin, password: 'wrong' })).status, 401);
  });

  it('signs tokens with APP_SECRET (ROLE_ADMIN by default)', async () => {
    const claims = await verify(await sb.token(), sb.env.APP_SECRET, 'HS256');
    assert.deepEqual(claims.roles, ['ROLE_ADMIN']);
    assert.equal(claims.iss, 'phpborg');
    assert.equal(claims.aud, 'phpborg-api');
    assert.equal(claims.username, sb.admin.username);
    assert.ok(typeof claims.exp === 'number' && claims.exp - Math.floor(Date.now() / 1000) > 3500);
    const user = await verify(await sb.token('ROLE_USER'), sb.env.APP_SECRET, 'HS256');
    assert.deepEqual(user.roles, ['ROLE_USER']);
    await assert.rejects(verify(await sb.token('ROLE_ADMIN', { secret: 'not-the-secret' }), sb.env.APP_SECRET, 'HS256'));
    const cli = await runOk(join(root, 'scripts/sandbox'), ['token', sb.dir, '--role', 'ROLE_USER']);
    assert.deepEqual((await verify(cli.trim(), sb.env.APP_SECRET, 'HS256')).roles, ['ROLE_USER']);
  });

  it('processes a pushed job into an archives row', async () => {
    const id = await sb.pushJob({ payload: { server_id: 2 } });
    await sb.waitForJob(id);
    const rows = await sb.query<{ server_id: number; start: string; end: string }>('SELECT server_id, start, end FROM archives WHERE nom LIKE ?', [`job${id}-%`]);
    assert.equal(rows.length, 1);
    assert.equal(rows[0].server_id, 2);
    const [job] = await sb.query<{ completed_at: string | null }>('SELECT completed_at FROM jobs WHERE id = ?', [id]);
    assert.ok(job.completed_at);
  });

  it('stops a worker for real, and jobs wait in Redis while all workers are stopped', async () => {
    const pid = sb.unitPid('phpborg-worker@2');
    assert.ok(alive(pid));
    assert.equal((await sb.systemctl('stop', 'phpborg-worker@2')).code, 0);
    assert.equal((await sb.systemctl('is-active', 'phpborg-worker@2')).stdout.trim(), 'inactive');
    assert.equal(alive(pid), false);

    assert.equal((await sb.systemctl('stop', 'phpborg-workers.target')).code, 0);
    for (const w of [1, 2, 3]) assert.equal(sb.unitPid(`phpborg-worker@${w}`), null);
    const ids = [await sb.pushJob(), await sb.pushJob(), await sb.pushJob()];
    await sleep(400);
    assert.equal(await sb.queueLength(), 3);
    const pending = await sb.query<{ status: string }>('SELECT status FROM jobs WHERE id IN (?)', [ids]);
    assert.deepEqual(pending.map((r) => r.status), ['pending', 'pending', 'pending']);

    assert.equal((await sb.systemctl('start', 'phpborg-workers.target')).code, 0);
    for (const id of ids) await sb.waitForJob(id);
    assert.equal(await sb.queueLength(), 0);
  });

  it('reports a killed worker as failed and starts it again', async () => {
    const pid = sb.unitPid('phpborg-worker@1')!;
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 40 && alive(pid); i++) await sleep(25);
    const r = await sb.systemctl('is-active', 'phpborg-worker@1');
    assert.equal(r.stdout.trim(), 'failed');
    assert.equal(r.code, 3);
    assert.equal((await sb.systemctl('restart', 'phpborg-worker@1')).code, 0);
    assert.equal((await sb.systemctl('is-active', 'phpborg-worker@1')).code, 0);
  });

  it('stops and starts the database like a real service', async () => {
    assert.equal((await sb.systemctl('stop', 'mariadb')).code, 0);
    await assert.rejects(sb.query('SELECT 1'));
    assert.equal((await fetch(sb.config.phpborg_api.health_url)).status, 503);
    assert.equal((await sb.systemctl('start', 'mariadb')).code, 0);
    assert.deepEqual(await sb.query('SELECT 1 AS one'), [{ one: 1 }]);
  });

  it('sits beside a second sandbox without collision', async () => {
    other = await startSandbox({ workers: 1 });
    assert.notEqual(other.env.DB_PORT, sb.env.DB_PORT);
    assert.notEqual(other.env.REDIS_PORT, sb.env.REDIS_PORT);
    assert.notEqual(other.config.phpborg_api.health_url, sb.config.phpborg_api.health_url);
    await other.query("UPDATE settings SET value = 'en' WHERE `key` = 'app.language'");
    const [mine] = await sb.query<{ value: string }>("SELECT value FROM settings WHERE `key` = 'app.language'");
    assert.equal(mine.value, 'fr');
    const id = await other.pushJob();
    await other.waitForJob(id);
    assert.equal((await fetch(sb.config.phpborg_api.health_url)).status, 200);
    assert.equal((await fetch(other.config.phpborg_api.health_url)).status, 200);
    await other.down();
    other = undefined;
    assert.equal((await fetch(sb.config.phpborg_api.health_url)).status, 200);
  });

  it('down leaves no process; up again keeps the data', async () => {
    await sb.query("INSERT INTO servers (name, host) VALUES ('marker-host', 'marker.lan')");
    const [{ n: before }] = await sb.query<{ n: string }>('SELECT COUNT(*) n FROM archives');
    const pids = units.map((u) => sb.unitPid(u));
    assert.ok(pids.every(alive));
    assert.ok(processesOf(sb.dir).length >= units.length, `the scan sees the sandbox: ${processesOf(sb.dir).join('; ')}`);
    await downSandbox(sb.dir);
    for (const [i, pid] of pids.entries()) assert.equal(alive(pid), false, `${units[i]} (pid ${pid}) is gone`);
    assert.deepEqual(processesOf(sb.dir), [], 'no process of the sandbox outlives down (children included)');
    assert.equal((await sb.systemctl('is-active', '--quiet', 'mariadb')).code, 3);

    const t0 = Date.now();
    await upSandbox(sb.dir, { log: () => {} });
    assert.ok(Date.now() - t0 < 15_000, 'restart is quick');
    const [{ n: after }] = await sb.query<{ n: string }>('SELECT COUNT(*) n FROM archives');
    assert.equal(after, before);
    assert.equal((await sb.query("SELECT id FROM servers WHERE name = 'marker-host'")).length, 1);
    assert.equal(await git(sb, 'rev-list', '--count', 'HEAD..origin/master'), '2');
    assert.ok(readMeta(join(sb.dir, 'sandbox.json'))?.complete);
    const id = await sb.pushJob();
    await sb.waitForJob(id);
  });
});

describe('sandbox command', () => {
  it('names the Debian package of a missing program and changes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'phpborg-sandbox-nobin-'));
    try {
      const tsx = join(root, 'node_modules/tsx/dist/cli.mjs');
      const r = await run(process.execPath, [tsx, join(root, 'scripts/sandbox-kit/main.ts'), 'up', dir], { env: { PATH: '/nonexistent', HOME: tmpdir() } });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /apt-get install redis-server/);
      assert.match(r.stderr, /apt-get install git/);
      assert.equal(existsSync(join(dir, 'sandbox.json')), false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects bad arguments with usage', async () => {
    const r = await run(join(root, 'scripts/sandbox'), ['up']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing DIR/);
    const s = await run(join(root, 'scripts/sandbox'), ['up', '/tmp/x', '--size', 'big']);
    assert.equal(s.code, 1);
    assert.match(s.stderr, /--size expects a whole number/);
  });
});
