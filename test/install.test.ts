// scripts/install and scripts/uninstall with --prefix on a sandbox (its root prefix, its systemctl
// stand-in runs the unit): --dry-run changes nothing; install detects phpBorg, lays keeper down with
// its bundles, config, sudoers line, unit and user entry, and starts it; the bundled CLI's status is ok
// and the bundled runner answers; a second install changes nothing and says so; uninstall removes
// keeper but keeps the ledger and the backups; --purge removes those too.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import { lastJson, scriptPath, spawnOut } from './support/install.ts';

let sb: Sandbox;
let port: number;
const P = (p: string) => join(sb.dir, p);
// phpBorg's web side is nginx + php-fpm on a real server (port 80); the sandbox's API stand-in has its own port
const install = (...args: string[]) =>
  spawnOut(scriptPath('install'), ['--prefix', sb.dir, '--port', String(port), '--phpborg-url', new URL(sb.config.phpborg_api.health_url).origin, ...args]);
const uninstall = (...args: string[]) => spawnOut(scriptPath('uninstall'), ['--prefix', sb.dir, ...args]);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function keeperHealth(timeoutMs: number): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return (await fetch(`http://127.0.0.1:${port}/api/health`)).status;
    } catch {
      if (Date.now() > deadline) return null;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Every file of the installed tree with its mtime: a second install must leave it alone. */
function treeTimes(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(p, statSync(p, { throwIfNoEntry: false })?.mtimeMs ?? 0);
    }
  };
  walk(dir);
  return out;
}

before(async () => {
  sb = await startSandbox();
  port = await freePort();
});
after(async () => {
  if (sb) await sb.systemctl('stop', 'phpborg-keeper').catch(() => {});
  await sb?.down();
});

test('install --dry-run, install, status ok through the bundles, second install unchanged, uninstall keeps the ledger and backups, --purge', { timeout: 170_000 }, async () => {
  // dry run: every change printed, nothing made
  let r = await install('--dry-run');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /would change: system user phpborg-keeper/);
  assert.match(r.stdout, /would change: .*keeper\.json/);
  assert.match(r.stdout, /would change: .*phpborg-keeper\.service/);
  assert.ok(!existsSync(P('opt/phpborg-keeper')), 'dry run: nothing installed');
  assert.ok(!existsSync(P('etc/phpborg-keeper')), 'dry run: no configuration');

  r = await install();
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`phpBorg found: ${sb.config.paths.code.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  assert.match(r.stdout, new RegExp(`http://127\\.0\\.0\\.1:${port}/`));
  assert.match(r.stdout, /location \/keeper\/ \{/);
  const cfgFile = P('etc/phpborg-keeper/keeper.json');
  assert.equal(statSync(cfgFile).mode & 0o777, 0o600);
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as { paths: { code: string }; service_manager: string[]; extra_units: string[] };
  assert.equal(cfg.paths.code, sb.config.paths.code);
  assert.deepEqual(cfg.service_manager, [P('bin/systemctl')]);
  // phpBorg's own units are the scheduler and the workers; phpborg-restart runs once, started by its .path
  assert.deepEqual(cfg.extra_units, []);
  assert.equal(statSync(P('etc/sudoers.d/phpborg-keeper')).mode & 0o777, 0o440);
  assert.match(readFileSync(P('etc/sudoers.d/phpborg-keeper'), 'utf8'), /^phpborg-keeper ALL=\(root\) NOPASSWD: \/usr\/bin\/env MALLOC_ARENA_MAX\\=1 MALLOC_MMAP_THRESHOLD_\\=131072 \S+node\S* \S+\/opt\/phpborg-keeper\/var\/build\/helper\.mjs\n$/);
  assert.match(readFileSync(P('etc/systemd/system/phpborg-keeper.service'), 'utf8'), /ExecStart=\S+ \S+\/var\/build\/runner\.mjs/);
  assert.match(readFileSync(P('etc/passwd'), 'utf8'), /^phpborg-keeper:x:\d+:\d+:/m);
  for (const b of ['runner', 'keeper', 'helper']) assert.ok(existsSync(P(`opt/phpborg-keeper/var/build/${b}.mjs`)), `${b} bundle`);
  assert.ok(existsSync(P('opt/phpborg-keeper/functions/ui/dist/index.html')), 'the web UI');

  // the bundled CLI, plain node (no TypeScript loader): status ok
  const cli = await spawnOut(process.execPath, [P('opt/phpborg-keeper/var/build/keeper.mjs'), '--config', cfgFile, 'status', '--json']);
  assert.equal(cli.code, 0, cli.stdout + cli.stderr);
  assert.equal((lastJson(cli.stdout) as { ok: boolean }).ok, true);
  // the unit runs the bundled runner
  assert.equal(await keeperHealth(20_000), 200, 'the installed runner answers /api/health');
  const page = await fetch(`http://127.0.0.1:${port}/`, { headers: { accept: 'text/html' } });
  assert.equal(page.status, 200);

  // second run: nothing changes, and it says so
  const before = treeTimes(P('opt/phpborg-keeper'));
  r = await install();
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /nothing to change: keeper is installed as it should be/);
  assert.doesNotMatch(r.stdout, /^change:/m);
  assert.deepEqual(treeTimes(P('opt/phpborg-keeper')), before, 'no file of the installed tree was touched');

  // uninstall: keeper goes, the ledger and the backups stay
  r = await uninstall();
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const p of ['opt/phpborg-keeper', 'etc/phpborg-keeper', 'etc/sudoers.d/phpborg-keeper', 'etc/systemd/system/phpborg-keeper.service', 'usr/local/bin/keeper']) {
    assert.ok(!existsSync(P(p)), `${p} removed`);
  }
  assert.ok(existsSync(join(sb.config.paths.state, 'ledger.sqlite')), 'the ledger is kept');
  assert.ok(existsSync(sb.config.paths.storage), 'the backups are kept');
  assert.doesNotMatch(readFileSync(P('etc/passwd'), 'utf8'), /^phpborg-keeper:/m);
  assert.equal(await keeperHealth(0), null, 'the runner is stopped');
  // phpBorg itself is untouched
  const units = await sb.systemctl('is-active', 'phpborg-scheduler', 'phpborg-api');
  assert.equal(units.code, 0, units.stdout);

  r = await uninstall();
  assert.match(r.stdout, /nothing to remove/);
  r = await uninstall('--purge');
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.ok(!existsSync(sb.config.paths.state) && !existsSync(sb.config.paths.storage), '--purge removes the ledger and the backups');
});
