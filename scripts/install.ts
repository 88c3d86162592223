// scripts/install and scripts/uninstall: put keeper on a real phpBorg server (or take it off again).
//
//   scripts/install   [--prefix DIR] [--dry-run] [--port N] [--code DIR] [--phpborg-url URL]
//   scripts/uninstall [--prefix DIR] [--dry-run] [--purge]
//
// install detects the phpBorg install (code dir, .env, phpborg-* units), creates the phpborg-keeper
// system user, copies keeper into /opt/phpborg-keeper (root-owned: what sudo runs must not be writable
// by the keeper user) with its production dependencies, the built web UI and three bundles (runner, CLI,
// helper: plain node, no TypeScript loader at run time), writes /etc/phpborg-keeper/keeper.json (0600)
// from what it detected, the sudoers line for the helper (checked with visudo -cf where visudo exists),
// the systemd unit, and enables and starts it. Every action compares first: a second run changes
// nothing and says so; --dry-run prints what each action would change and changes nothing.
// --prefix DIR treats DIR as the root of the machine (tests run it on a sandbox, whose bin/systemctl
// stand-in then runs the unit); the system user is then written as passwd/group entries under DIR.
// uninstall stops and removes all of it but the backups and the ledger (the state dir); --purge removes
// those too. Every program is spawned with an argument array.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, chownSync, copyFileSync, existsSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { buildBundle, BUNDLES, PROJECT_ROOT, type BundleName } from '../runtime/helper/bundle.ts';
import { MALLOC_TUNING } from '../runtime/helper/spawn.ts';
import { ensureUiBuilt } from '../functions/ui/build.ts';
import { parse as parseDotenv } from 'dotenv';

const USER = 'phpborg-keeper';
const UNIT = 'phpborg-keeper.service';

interface Opts {
  prefix: string;
  dryRun: boolean;
  port: number;
  code: string | null;
  /** where phpBorg's web API answers (health and sign-in); default APP_URL of .env, else http://127.0.0.1 */
  phpborgUrl: string | null;
  purge: boolean;
}

/** A path on the target machine (under --prefix when given). */
const at = (o: Opts, p: string) => (o.prefix === '/' ? p : join(o.prefix, p));

let changes = 0;
function say(o: Opts, changed: boolean, what: string): void {
  if (changed) changes++;
  console.log(`${changed ? (o.dryRun ? 'would ' : '') + 'change' : 'unchanged'}: ${what}`);
}
const note = (s: string) => console.log(`note: ${s}`);

function run(cmd: string, args: string[], o: { check?: boolean } = {}): { code: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) {
    if (o.check) throw new Error(`cannot run ${cmd}: ${r.error.message}`);
    return { code: 127, out: r.error.message };
  }
  if (o.check && r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim()}`);
  return { code: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
}
const which = (cmd: string) => run('sh', ['-c', 'command -v "$1"', 'sh', cmd]).out.trim() || null;

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const isRoot = () => process.getuid?.() === 0;

/** Writes `data` at `path` (mode) when its content or mode differs; returns whether it did (or would). */
function ensureFile(o: Opts, path: string, data: Buffer | string, mode: number, label = path): boolean {
  let same = false;
  try {
    const st = statSync(path);
    same = (st.mode & 0o7777) === mode && sha(readFileSync(path)) === sha(data);
  } catch {
    /* missing */
  }
  say(o, !same, label);
  if (same || o.dryRun) return !same;
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.keeper-install-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  if (isRoot()) chownSync(tmp, 0, 0);
  renameSync(tmp, path);
  return true;
}

// ── detection ──────────────────────────────────────────────────────────────────────────────────

interface Detected {
  code: string;
  env: Record<string, string>;
  units: string[];
  systemctl: string[];
  ssh: string;
  socket: string | null;
}

function detect(o: Opts): Detected {
  const candidates = o.code ? [o.code] : ['/opt/newphpborg/phpBorg', '/opt/phpborg/phpBorg', '/var/www/phpBorg'].map((p) => at(o, p));
  const code = candidates.find((c) => existsSync(join(c, '.env')));
  if (!code) throw new Error(`no phpBorg install found: none of ${candidates.join(', ')} holds a .env (give --code DIR)`);
  const env = parseDotenv(readFileSync(join(code, '.env')));
  const systemdDir = at(o, '/etc/systemd/system');
  const units = existsSync(systemdDir) ? readdirSync(systemdDir).filter((n) => /^phpborg-.*\.(service|target|path)$/.test(n) && !n.startsWith(USER)).sort() : [];
  // a prefix with its own systemctl (a sandbox's stand-in) is managed with it
  const standIn = at(o, '/bin/systemctl');
  const systemctl = o.prefix !== '/' && existsSync(standIn) ? [standIn] : ['systemctl'];
  // the phpborg user's home holds its SSH keys
  let home = '/var/lib/phpborg';
  try {
    const line = readFileSync(at(o, '/etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith('phpborg:'));
    if (line) home = line.split(':')[5] || home;
  } catch {
    /* no passwd under the prefix */
  }
  const socket = [env.DB_SOCKET, '/run/mysqld/mysqld.sock', '/var/run/mysqld/mysqld.sock'].filter(Boolean).map((p) => (p!.startsWith(o.prefix) ? p! : at(o, p!))).find((p) => existsSync(p)) ?? null;
  return { code, env, units, systemctl, ssh: at(o, join(home, '.ssh')), socket };
}

function keeperConfig(o: Opts, d: Detected): Record<string, unknown> {
  const api = (o.phpborgUrl || d.env.APP_URL || 'http://127.0.0.1').replace(/\/+$/, '');
  // long-running services only: the scheduler and workers are keeper's maintenance units already, a
  // target groups them, and a service started by a .path unit (phpborg-restart) runs once and exits
  const paths = new Set(d.units.filter((u) => u.endsWith('.path')).map((u) => u.replace(/\.path$/, '')));
  const extra = d.units
    .filter((u) => u.endsWith('.service'))
    .map((u) => u.replace(/\.service$/, ''))
    .filter((u) => !/^phpborg-(scheduler|worker@|workers)/.test(u) && !paths.has(u));
  return {
    paths: {
      code: d.code,
      ssh: d.ssh,
      sudoers: at(o, '/etc/sudoers.d'),
      systemd: at(o, '/etc/systemd/system'),
      etc: at(o, '/etc/phpborg'),
      storage: at(o, '/opt/backups/phpborg-self-backups'),
      state: at(o, '/var/lib/phpborg-keeper'),
    },
    units: null,
    extra_units: extra,
    service_manager: d.systemctl,
    // under a prefix nobody is elevated (tests run unprivileged); on a server the keeper user sudoes the helper
    helper_prefix: o.prefix === '/' ? ['sudo', '-n'] : [],
    phpborg_api: { health_url: `${api}/api/health`, login_url: `${api}/api/auth/login` },
    server: { host: '127.0.0.1', port: o.port },
    mariadb_admin: { socket: d.socket, host: d.env.DB_HOST || '127.0.0.1', port: Number(d.env.DB_PORT || 3306), user: 'root' },
  };
}

// ── the tree ───────────────────────────────────────────────────────────────────────────────────

/** Source files keeper runs from (the emergency script and the helper's freshness check read them). */
function sourceFiles(): string[] {
  const out: string[] = ['package.json', 'package-lock.json', 'README.md', 'wrangler-free.md'];
  const walk = (rel: string, skip: (r: string) => boolean) => {
    for (const e of readdirSync(join(PROJECT_ROOT, rel), { withFileTypes: true })) {
      const r = join(rel, e.name);
      if (skip(r)) continue;
      if (e.isDirectory()) walk(r, skip);
      else if (e.isFile() || e.isSymbolicLink()) out.push(r);
    }
  };
  const skip = (r: string) => r === 'functions/ui/src' || r === 'functions/ui/node_modules' || r.startsWith('scripts/bench') || r === 'scripts/sandbox';
  for (const d of ['archive', 'state', 'runtime', 'functions', 'scripts', 'docs']) walk(d, skip);
  // the production dependencies only, as the lock file lists them
  const lock = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  for (const [p, meta] of Object.entries(lock.packages)) {
    if (!p.startsWith('node_modules/') || meta.dev || !existsSync(join(PROJECT_ROOT, p))) continue;
    walk(p, () => false);
  }
  // the emergency script runs through tsx's launcher
  if (existsSync(join(PROJECT_ROOT, 'node_modules/.bin/tsx'))) out.push('node_modules/.bin/tsx');
  return [...new Set(out)];
}

function syncTree(o: Opts, dest: string): number {
  let changed = 0;
  const files = sourceFiles();
  const wanted = new Set(files);
  for (const rel of files) {
    const src = join(PROJECT_ROOT, rel);
    const to = join(dest, rel);
    if (lstatSync(src).isSymbolicLink()) {
      const link = readlinkSync(src);
      let sameLink = false;
      try {
        sameLink = readlinkSync(to) === link;
      } catch {
        /* missing */
      }
      if (sameLink) continue;
      changed++;
      if (o.dryRun) continue;
      mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
      rmSync(to, { force: true });
      symlinkSync(link, to);
      continue;
    }
    const st = statSync(src);
    let same = false;
    try {
      const d = statSync(to);
      same = d.size === st.size && (d.mode & 0o777) === (st.mode & 0o755) && sha(readFileSync(to)) === sha(readFileSync(src));
    } catch {
      /* missing */
    }
    if (same) continue;
    changed++;
    if (o.dryRun) {
      if (changed <= 20) console.log(`  would copy ${rel}`);
      continue;
    }
    mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
    copyFileSync(src, to);
    // never group/other-writable; times kept so the bundles (written after) are newer than their sources
    chmodSync(to, st.mode & 0o755);
    utimesSync(to, st.atime, st.mtime);
  }
  // what an earlier version installed and this one no longer has
  const extra: string[] = [];
  const walk = (rel: string) => {
    const p = join(dest, rel);
    if (!existsSync(p)) return;
    for (const e of readdirSync(p, { withFileTypes: true })) {
      const r = join(rel, e.name);
      if (r === 'var') continue;
      if (e.isDirectory()) walk(r);
      else if (!wanted.has(r)) extra.push(r);
    }
  };
  walk('');
  for (const r of extra) {
    changed++;
    if (o.dryRun) console.log(`  would remove ${r}`);
    else rmSync(join(dest, r), { force: true });
  }
  if (o.dryRun && changed > 20) console.log(`  … ${changed} files in all`);
  return changed;
}

function chownTree(path: string): void {
  lchownSync(path, 0, 0);
  if (lstatSync(path).isDirectory()) for (const n of readdirSync(path)) chownTree(join(path, n));
}

// ── the system user ────────────────────────────────────────────────────────────────────────────

function ensureUser(o: Opts): void {
  if (o.prefix === '/') {
    const exists = run('getent', ['passwd', USER]).code === 0;
    say(o, !exists, `system user ${USER}`);
    if (!exists && !o.dryRun) {
      run('useradd', ['--system', '--user-group', '--home-dir', '/var/lib/phpborg-keeper', '--no-create-home', '--shell', '/usr/sbin/nologin', USER], { check: true });
    }
    return;
  }
  // under a prefix: the user is an entry of DIR/etc/passwd and DIR/etc/group, never of this machine
  const passwd = at(o, '/etc/passwd');
  const group = at(o, '/etc/group');
  const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
  const p = read(passwd);
  const g = read(group);
  const has = (text: string) => text.split('\n').some((l) => l.startsWith(`${USER}:`));
  const present = has(p) && has(g);
  say(o, !present, `system user ${USER} (as entries of ${passwd} and ${group}: --prefix never creates a user on this machine)`);
  if (present || o.dryRun) return;
  const used = new Set([...p.split('\n'), ...g.split('\n')].map((l) => Number(l.split(':')[2])).filter((n) => Number.isInteger(n)));
  let id = 999;
  while (used.has(id)) id--;
  mkdirSync(dirname(passwd), { recursive: true });
  if (!has(p)) writeFileSync(passwd, `${p}${p && !p.endsWith('\n') ? '\n' : ''}${USER}:x:${id}:${id}:phpborg-keeper:/var/lib/phpborg-keeper:/usr/sbin/nologin\n`);
  if (!has(g)) writeFileSync(group, `${g}${g && !g.endsWith('\n') ? '\n' : ''}${USER}:x:${id}:\n`);
}

// ── install ────────────────────────────────────────────────────────────────────────────────────

function unitText(o: Opts, dest: string, configFile: string): string {
  const node = process.execPath;
  return `[Unit]
Description=phpborg-keeper (backup, restore and update of phpBorg)
After=network.target mariadb.service

[Service]
User=${USER}
Group=${USER}
WorkingDirectory=${dest}
Environment=KEEPER_CONFIG=${configFile}
Environment=KEEPER_SHUTDOWN_GRACE_MS=30000
ExecStart=${node} ${join(dest, 'var/build/runner.mjs')}
# let a helper that is restoring finish when the runner restarts: only the runner gets SIGTERM
KillMode=process
TimeoutStopSec=60
Restart=on-failure

[Install]
WantedBy=multi-user.target
`;
}

async function install(o: Opts): Promise<void> {
  if (o.prefix === '/' && !isRoot() && !o.dryRun) throw new Error('run it as root (or --dry-run, or --prefix DIR)');
  const d = detect(o);
  console.log(`phpBorg found: ${d.code} (.env: database ${d.env.DB_NAME ?? '?'} on ${d.env.DB_HOST ?? '?'}:${d.env.DB_PORT ?? '?'}; units: ${d.units.join(', ') || 'none'})`);
  const dest = at(o, '/opt/phpborg-keeper');
  const configFile = at(o, '/etc/phpborg-keeper/keeper.json');
  const sm = d.systemctl;

  ensureUser(o);

  // the web UI is built here, in the release tree, then copied like any other file
  if (!o.dryRun) await ensureUiBuilt({ log: (l) => console.log(`  ${l}`) });
  const treeChanged = syncTree(o, dest);
  say(o, treeChanged > 0, `keeper in ${dest}${treeChanged ? ` (${treeChanged} files)` : ''}`);

  // the bundles: plain node at run time; rewritten whenever a source changed, so they stay newer
  const build = mkdtempSync(join(tmpdir(), 'keeper-install-'));
  try {
    for (const name of Object.keys(BUNDLES) as BundleName[]) {
      // its chunks and sources list, then the entry (last: it must be the newest, see below)
      for (const out of buildBundle(name, build)) {
        const target = join(dest, 'var/build', basename(out));
        const data = readFileSync(out);
        if (treeChanged > 0 && !o.dryRun && existsSync(target)) rmSync(target);
        ensureFile(o, target, data, 0o644, `bundle ${relative(dest, target)}`);
      }
    }
  } finally {
    rmSync(build, { recursive: true, force: true });
  }
  if (!o.dryRun) {
    if (isRoot()) chownTree(dest);
    else note(`not root: ${dest} stays owned by uid ${process.getuid?.()} (as root it is chowned to root)`);
  }

  // the configuration: written once from what was detected; an administrator's edits are kept
  if (existsSync(configFile)) say(o, false, `${configFile} (kept as it is; delete it to detect again)`);
  else ensureFile(o, configFile, JSON.stringify(keeperConfig(o, d), null, 2) + '\n', 0o600);
  // the CLI finds it at its default place on a server
  const cli = at(o, '/usr/local/bin/keeper');
  ensureFile(o, cli, `#!/bin/sh\nexec ${process.execPath} ${join(dest, 'var/build/keeper.mjs')} --config ${configFile} "$@"\n`, 0o755);

  // sudo: the keeper user may start exactly the helper bundle, nothing else
  const sudoers = at(o, '/etc/sudoers.d/phpborg-keeper');
  // the helper's command line as runtime/helper/spawn.ts runs it, '=' escaped as sudoers wants it
  const command = [...MALLOC_TUNING, process.execPath, join(dest, 'var/build/helper.mjs')].map((w) => w.replaceAll('=', '\\='));
  const line = `${USER} ALL=(root) NOPASSWD: ${command.join(' ')}\n`;
  const visudo = which('visudo');
  if (visudo) {
    const tmp = mkdtempSync(join(tmpdir(), 'keeper-sudoers-'));
    try {
      writeFileSync(join(tmp, 'phpborg-keeper'), line, { mode: 0o440 });
      run(visudo, ['-cf', join(tmp, 'phpborg-keeper')], { check: true });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  } else note('visudo is not installed here: the sudoers line was not syntax-checked');
  ensureFile(o, sudoers, line, 0o440);

  const unitFile = at(o, `/etc/systemd/system/${UNIT}`);
  const unitChanged = ensureFile(o, unitFile, unitText(o, dest, configFile), 0o644);

  // enable and start (restart when keeper itself changed)
  const active = run(sm[0], [...sm.slice(1), 'is-active', '--quiet', UNIT]).code === 0;
  const enabled = run(sm[0], [...sm.slice(1), 'is-enabled', '--quiet', UNIT]).code === 0;
  const restart = active && (treeChanged > 0 || unitChanged);
  say(o, !enabled || !active || restart, `${UNIT} enabled and ${restart ? 'restarted' : 'running'}`);
  if (!o.dryRun) {
    if (unitChanged) run(sm[0], [...sm.slice(1), 'daemon-reload'], { check: true });
    if (!enabled) run(sm[0], [...sm.slice(1), 'enable', UNIT], { check: true });
    if (restart) run(sm[0], [...sm.slice(1), 'restart', UNIT], { check: true });
    else if (!active) run(sm[0], [...sm.slice(1), 'start', UNIT], { check: true });
  }

  const port = (() => {
    try {
      return (JSON.parse(readFileSync(configFile, 'utf8')) as { server?: { port?: number } }).server?.port ?? o.port;
    } catch {
      return o.port;
    }
  })();
  console.log('');
  console.log(changes === 0 ? 'nothing to change: keeper is installed as it should be' : o.dryRun ? `${changes} change(s) would be made` : `${changes} change(s) made`);
  console.log(`keeper listens on http://127.0.0.1:${port}/ ; the CLI: ${cli} status`);
  console.log(`in phpBorg's nginx server block:

location /keeper/ {
    proxy_pass http://127.0.0.1:${port}/;
    proxy_http_version 1.1;
    proxy_set_header Host $host;
    proxy_buffering off;
    proxy_read_timeout 1h;
    client_max_body_size 0;
}`);
}

// ── uninstall ──────────────────────────────────────────────────────────────────────────────────

function remove(o: Opts, path: string, label = path): void {
  const there = existsSync(path);
  say(o, there, `remove ${label}`);
  if (there && !o.dryRun) rmSync(path, { recursive: true, force: true });
}

function uninstall(o: Opts): void {
  if (o.prefix === '/' && !isRoot() && !o.dryRun) throw new Error('run it as root (or --dry-run, or --prefix DIR)');
  const standIn = at(o, '/bin/systemctl');
  const sm = o.prefix !== '/' && existsSync(standIn) ? [standIn] : ['systemctl'];
  const unitFile = at(o, `/etc/systemd/system/${UNIT}`);
  if (existsSync(unitFile)) {
    const active = run(sm[0], [...sm.slice(1), 'is-active', '--quiet', UNIT]).code === 0;
    say(o, active, `stop and disable ${UNIT}`);
    if (!o.dryRun) {
      run(sm[0], [...sm.slice(1), 'stop', UNIT]);
      run(sm[0], [...sm.slice(1), 'disable', UNIT]);
    }
  }
  remove(o, unitFile);
  if (!o.dryRun && existsSync(at(o, '/etc/systemd/system'))) run(sm[0], [...sm.slice(1), 'daemon-reload']);
  remove(o, at(o, '/etc/sudoers.d/phpborg-keeper'));
  remove(o, at(o, '/usr/local/bin/keeper'));
  remove(o, at(o, '/opt/phpborg-keeper'));
  remove(o, at(o, '/etc/phpborg-keeper'));
  const state = at(o, '/var/lib/phpborg-keeper');
  const storage = at(o, '/opt/backups/phpborg-self-backups');
  if (o.purge) {
    remove(o, state, `${state} (the ledger: --purge)`);
    remove(o, storage, `${storage} (every backup: --purge)`);
  } else {
    console.log(`kept: ${state} (the ledger) and ${storage} (the backups); --purge removes them too`);
  }
  if (o.prefix === '/') {
    const exists = run('getent', ['passwd', USER]).code === 0;
    say(o, exists, `remove system user ${USER}`);
    if (exists && !o.dryRun) run('userdel', [USER], { check: true });
  } else {
    for (const f of [at(o, '/etc/passwd'), at(o, '/etc/group')]) {
      if (!existsSync(f)) continue;
      const text = readFileSync(f, 'utf8');
      const kept = text.split('\n').filter((l) => !l.startsWith(`${USER}:`)).join('\n');
      say(o, kept !== text, `remove ${USER} from ${f}`);
      if (kept !== text && !o.dryRun) writeFileSync(f, kept);
    }
  }
  console.log(changes === 0 ? 'nothing to remove: keeper is not installed here' : o.dryRun ? `${changes} change(s) would be made` : `${changes} change(s) made`);
}

// ── main ───────────────────────────────────────────────────────────────────────────────────────

async function main(argv: string[]): Promise<number> {
  const [mode, ...rest] = argv;
  const usage =
    mode === 'uninstall'
      ? 'usage: scripts/uninstall [--prefix DIR] [--dry-run] [--purge]'
      : 'usage: scripts/install [--prefix DIR] [--dry-run] [--port N] [--code DIR] [--phpborg-url URL]';
  let values;
  try {
    values = parseArgs({
      args: rest,
      options: { prefix: { type: 'string' }, 'dry-run': { type: 'boolean' }, port: { type: 'string' }, code: { type: 'string' }, 'phpborg-url': { type: 'string' }, purge: { type: 'boolean' }, help: { type: 'boolean' } },
      strict: true,
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const port = values.port === undefined ? 8787 : Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(`--port: expected a port number, got ${values.port}`);
    return 2;
  }
  const prefix = values.prefix ? values.prefix.replace(/\/+$/, '') || '/' : '/';
  if (prefix !== '/' && !prefix.startsWith('/')) {
    console.error('--prefix: expected an absolute path');
    return 2;
  }
  const phpborgUrl = values['phpborg-url'] ?? null;
  if (phpborgUrl !== null && !/^https?:\/\/[^\s/]+/.test(phpborgUrl)) {
    console.error(`--phpborg-url: expected http(s)://host[:port], got ${phpborgUrl}`);
    return 2;
  }
  const o: Opts = { prefix, dryRun: values['dry-run'] === true, port, code: values.code ?? null, phpborgUrl, purge: values.purge === true };
  if (o.dryRun) console.log('dry run: nothing is changed');
  if (mode === 'uninstall') uninstall(o);
  else await install(o);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(`error: ${(e as Error).message}`);
    process.exit(1);
  },
);
