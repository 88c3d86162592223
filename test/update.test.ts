// Update from git against the sandbox (its origin is two commits ahead: a migration and a frontend
// change). One sandbox, in order: status and changelog; refusals that change nothing (dirty tree,
// not a commit, bad ref, a pre-update backup that cannot be written); a successful update through the API (with a concurrent apply → 409);
// already up to date; not a fast-forward; three failures that roll back to the byte- and
// row-identical pre-update install (invalid SQL through the CLI, a failing frontend build, a health
// probe that fails only on the new code); a manual rollback of the successful update; a newer
// success unpins the older pre-update backups.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, statSync, readFileSync, rmSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runner } from '../runtime/runner.ts';
import { createRunner } from '../scripts/runner.ts';
import { runOk, safeEnv } from '../runtime/exec.ts';
import { tableChecksums } from '../runtime/mariadb-import.ts';
import { codeExcluder } from '../functions/backup/sources.ts';
import { getBackup } from '../state/catalog.ts';
import { updateSettings } from '../state/settings.ts';
import type { UpdateRow } from '../state/updates.ts';
import type { UpdateStatus, Changelog } from '../functions/update/info.ts';
import type { ApplyResult } from '../functions/update/apply.task.ts';
import type { RollbackPreview } from '../functions/update/rollback.task.ts';
import { isSafeRef, parseLog } from '../runtime/git.ts';
import { decisiveLines, ownerHome, planDependencies } from '../functions/update/dependencies.ts';
import { resolveOwner } from '../functions/restore/files.ts';
import { sortMigrations } from '../functions/update/migrations.ts';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import { apiRequest, jobOf, keeperCli, lastJson, patchConfig, snapshotTree, unitsActive as allUnitsActive } from './support/install.ts';

let sb: Sandbox;
let runner: Runner;
let token: string;
let work: string;
let pusher: string;
let code: string;

const gitEnv = safeEnv({ GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1' });
const git = (dir: string, args: string[]) => runOk('git', ['-C', dir, ...args], { env: gitEnv }).then((s) => s.trim());

before(async () => {
  sb = await startSandbox();
  // a failing health probe should not take the default 20 s per attempt in tests
  patchConfig(sb, { health_timeout_s: 3 });
  code = sb.config.paths.code;
  runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
  token = await sb.token();
  work = mkdtempSync(join(tmpdir(), 'keeper-update-test-'));
  // a second clone of the bare origin: the "upstream developer" who pushes new commits
  pusher = join(work, 'upstream');
  await runOk('git', ['clone', '-q', sb.paths.origin, pusher], { env: gitEnv });
  await git(pusher, ['config', 'user.name', 'Upstream Dev']);
  await git(pusher, ['config', 'user.email', 'dev@phpborg.local']);
});
after(async () => {
  await runner?.close().catch(() => {});
  await sb?.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

const api = (path: string, init: RequestInit = {}) => apiRequest(runner, token, path, init);
const getJson = async <T>(path: string): Promise<T> => {
  const res = await api(path);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as T;
};
const job = (res: Response, timeoutMs = 90_000) => jobOf(runner, res, timeoutMs);
const apply = (body: Record<string, unknown> = {}) => api('/api/phpborg-update/apply', { method: 'POST', body: JSON.stringify(body) });
const history = () => getJson<{ total: number; items: UpdateRow[] }>('/api/phpborg-update/history');

const keeper = (args: string[]) => keeperCli(sb, args);

/** Commits `files` (path → content, null deletes) upstream and pushes to the sandbox's origin. */
async function push(message: string, files: Record<string, string | null>): Promise<string> {
  for (const [f, content] of Object.entries(files)) {
    const abs = join(pusher, f);
    if (content === null) unlinkSync(abs);
    else {
      mkdirSync(join(abs, '..'), { recursive: true });
      writeFileSync(abs, content);
    }
  }
  await git(pusher, ['add', '-A']);
  await git(pusher, ['commit', '-q', '-m', message]);
  await git(pusher, ['push', '-q', 'origin', 'HEAD:master']);
  return git(pusher, ['rev-parse', 'HEAD']);
}

// ── what a user compares ─────────────────────────────────────────────────────────────────────────
const tree = (root: string) => snapshotTree(root, { exclude: codeExcluder(sb.config.exclude_dirs), symlinkModes: true });

async function snapshot() {
  const env = sb.readEnv().env;
  const columns = await sb.query<{ t: string; c: string; ty: string }>(
    'SELECT TABLE_NAME AS t, COLUMN_NAME AS c, COLUMN_TYPE AS ty FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION',
  );
  return { head: await git(code, ['rev-parse', 'HEAD']), code: tree(code), tables: await tableChecksums(env), columns };
}

function assertSame(a: Awaited<ReturnType<typeof snapshot>>, b: Awaited<ReturnType<typeof snapshot>>): void {
  assert.equal(b.head, a.head, 'HEAD is back where it was');
  const diff = Object.keys({ ...a.code, ...b.code }).filter((k) => JSON.stringify(a.code[k]) !== JSON.stringify(b.code[k]));
  assert.deepEqual(diff, [], 'code tree byte-identical (contents, modes, symlinks)');
  assert.deepEqual(b.columns, a.columns, 'schema identical');
  assert.deepEqual(b.tables, a.tables, 'every table checksum identical');
}

const unitsActive = () => allUnitsActive(sb);

async function jobsProcessed(): Promise<void> {
  const id = await sb.pushJob();
  await sb.waitForJob(id, 'completed', 15_000);
}

// ── tests, in order ──────────────────────────────────────────────────────────────────────────────

test('pure parts: refs, NUL-delimited log, dependency plan, migration order', () => {
  for (const ok of ['master', 'origin/master', 'v1.3.0', 'd879349', 'release/1.3']) assert.ok(isSafeRef(ok), ok);
  for (const bad of ['--upload-pack=x', '-x', 'a..b', 'a b', 'a;b', '$(x)', 'HEAD@{1}', 'x.lock', '', 'a//b', 'a/']) assert.ok(!isSafeRef(bad), bad);
  const out = ['h1', 's1', 'A', 'a@x', '2024-01-02T03:04:05+00:00', 'feat: one', 'body\n\nmore\n', 'h2', 's2', 'B', 'b@x', '2024-01-01T00:00:00+00:00', 'fix: two', ''].join('\0');
  assert.deepEqual(parseLog(out).map((c) => [c.hash, c.subject, c.body]), [['h1', 'feat: one', 'body\n\nmore'], ['h2', 'fix: two', '']]);
  assert.deepEqual(planDependencies(['frontend/src/app.js']), { composer: false, frontend: true });
  assert.deepEqual(planDependencies(['frontend/dist/index.html', 'composer.lock']), { composer: true, frontend: false });
  assert.deepEqual(planDependencies(['src/Kernel.php', 'migrations/006_x.sql']), { composer: false, frontend: false });
  assert.deepEqual(sortMigrations(['010_c.sql', '002_b.sql', '1_a.sql', '2_z.sql']), ['1_a.sql', '002_b.sql', '2_z.sql', '010_c.sql']);
});

test("a failing command's error keeps the decisive lines: composer's Problem blocks, npm's ERR! lines", () => {
  const composer = [
    'Loading composer repositories with package information',
    'Installing dependencies from lock file',
    'Verifying lock file contents can be installed on current platform.',
    'Your lock file does not contain a compatible set of packages. Please run composer update.',
    '',
    '  Problem 1',
    '    - Root composer.json requires php >=8.3 but your php version (8.2.7) does not satisfy that requirement.',
    '  Problem 2',
    '    - predis/predis is locked to version v2.2.2 and an update of this package was not requested.',
    '    - predis/predis v2.2.2 requires ext-redis * -> it is missing from your system. Install or enable PHP\'s redis extension.',
    '',
    'To enable extensions, verify that they are enabled in your .ini files:',
    '    - /etc/php/8.2/cli/php.ini',
    'You can also run `php --ini` in a terminal to see which files are used by PHP in CLI mode.',
  ];
  const picked = decisiveLines(composer);
  assert.equal(picked[0], 'Your lock file does not contain a compatible set of packages. Please run composer update.');
  assert.deepEqual(picked.slice(1), [
    'Problem 1',
    '- Root composer.json requires php >=8.3 but your php version (8.2.7) does not satisfy that requirement.',
    'Problem 2',
    '- predis/predis is locked to version v2.2.2 and an update of this package was not requested.',
    "- predis/predis v2.2.2 requires ext-redis * -> it is missing from your system. Install or enable PHP's redis extension.",
  ]);
  const npm = ['> phpborg-frontend@1.3.0 build', '> vite build', 'npm ERR! code ELIFECYCLE', 'npm ERR! errno 1', 'npm ERR! phpborg-frontend@1.3.0 build: `vite build`', 'npm ERR! A complete log of this run can be found in: /root/.npm/_logs/x.log', 'tail 1', 'tail 2'];
  assert.deepEqual(decisiveLines(npm), npm.slice(2, 6));
  assert.deepEqual(decisiveLines(['npm error code 1', 'npm error path /x']), ['npm error code 1', 'npm error path /x']);
  const platform = ['Checking platform requirements using the lock file', 'ext-json   8.2.7   success', 'ext-redis  n/a     predis/predis requires ext-redis (*)   missing', 'php        8.2.7   phpborg/phpborg requires php (>=8.3)   failed'];
  assert.deepEqual(decisiveLines(platform), platform.slice(2));
  // nothing recognisable: the last five lines
  assert.deepEqual(decisiveLines(['a', 'b', 'c', 'd', 'e', 'f', 'g']), ['c', 'd', 'e', 'f', 'g']);
});

test("composer / npm as the owner get a temp HOME, composer home and npm cache owned by the owner, removed after", async () => {
  const uid = process.getuid!();
  const gid = process.getgid!();
  const home = await ownerHome({ uid, gid }, 'someone');
  try {
    assert.deepEqual(Object.keys(home.env).sort(), ['COMPOSER_HOME', 'HOME', 'LOGNAME', 'USER', 'npm_config_cache']);
    assert.equal(home.env.HOME, home.dir);
    assert.ok(home.dir.startsWith(tmpdir()));
    for (const d of [home.env.HOME, home.env.COMPOSER_HOME, home.env.npm_config_cache]) {
      assert.ok(d.startsWith(home.dir), d);
      const st = statSync(d);
      assert.ok(st.isDirectory(), d);
      assert.equal(st.uid, uid, d);
      assert.equal(st.gid, gid, d);
    }
  } finally {
    await home.dispose();
  }
  assert.equal(existsSync(home.dir), false, 'the temp HOME is removed');
  // as root: a real unprivileged owner can write there through runuser -m (plain runuser would reset HOME)
  if (uid === 0) {
    const who = await resolveOwner({ user: 'nobody', group: 'nogroup' }).catch(() => null);
    if (!who) return;
    const h = await ownerHome(who, 'nobody');
    try {
      const out = await runOk('runuser', ['-m', '-u', 'nobody', '--', 'sh', '-c', 'touch "$HOME/h" "$COMPOSER_HOME/c" "$npm_config_cache/n" && echo "$HOME"'], {
        env: safeEnv(h.env),
      });
      assert.equal(out.trim(), h.dir);
      assert.equal(statSync(join(h.env.npm_config_cache, 'n')).uid, who.uid);
    } finally {
      await h.dispose();
    }
  }
});

test('status and changelog read the remote-tracking ref', async () => {
  const s = await getJson<UpdateStatus>('/api/phpborg-update/status');
  assert.equal(s.installed_version, 'v1.2.3');
  assert.equal(s.current_commit, await git(code, ['rev-parse', 'HEAD']));
  assert.equal(s.branch, 'master');
  assert.equal(s.available, true);
  assert.equal(s.commits_behind, 2);
  assert.equal(s.latest_commit, await git(sb.paths.origin, ['rev-parse', 'master']));
  assert.equal(s.latest_version, 'v1.3.0');
  assert.equal(s.latest_subject, 'Frontend: show when servers were added');
  assert.ok(s.versions.node && s.versions.mariadb, 'node and mariadb versions');

  const c = await getJson<Changelog>('/api/phpborg-update/changelog');
  assert.equal(c.total, 2);
  assert.deepEqual(c.commits.map((x) => x.subject), ['Frontend: show when servers were added', 'Add creation and update times to servers']);
  for (const x of c.commits) {
    assert.match(x.hash, /^[0-9a-f]{40}$/);
    assert.equal(x.short_hash, x.hash.slice(0, x.short_hash.length));
    assert.ok(!Number.isNaN(Date.parse(x.date)) && /T/.test(x.date), 'ISO 8601 date');
    assert.equal(x.author, 'phpBorg Release Bot');
  }
  const page = await getJson<Changelog>('/api/phpborg-update/changelog?limit=1&offset=1');
  assert.deepEqual(page.commits.map((x) => x.subject), ['Add creation and update times to servers']);
  assert.equal((await api('/api/phpborg-update/changelog?limit=100000')).status, 422);

  const checked = await job(await api('/api/phpborg-update/check', { method: 'POST', body: '{}' }));
  assert.equal(checked.status, 'succeeded', JSON.stringify(checked.error));
  const cs = checked.result as UpdateStatus;
  assert.equal(cs.commits_behind, 2);
  assert.ok(cs.last_check && cs.last_check_ok, 'the check is recorded');
  assert.equal((await getJson<UpdateStatus>('/api/phpborg-update/status')).last_check, cs.last_check);

  const cli = await keeper(['update', 'status', '--json']);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(lastJson(cli.stdout).commits_behind, 2);
});

test('refusals change nothing: dirty tree (API and CLI), not a commit, not a ref', async () => {
  const before = await snapshot();
  writeFileSync(join(code, 'src', 'local-hack.php'), '<?php // edited on the server\n');
  const j = await job(await apply());
  assert.equal(j.status, 'failed');
  assert.equal(j.error?.code, 'dirty_tree');
  assert.equal(j.error?.step, 'update.precheck');
  assert.match(j.error!.message, /src\/local-hack\.php/);
  const cli = await keeper(['update', 'apply', '--yes', '--json']);
  assert.equal(cli.code, 1);
  assert.equal((lastJson(cli.stdout).error as { code: string }).code, 'dirty_tree');
  unlinkSync(join(code, 'src', 'local-hack.php'));

  const nc = await job(await apply({ target: 'no-such-tag' }));
  assert.equal(nc.error?.code, 'target_not_commit');
  const bad = await apply({ target: '--upload-pack=touch /tmp/x' });
  assert.equal(bad.status, 422);
  assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'invalid_input');
  assert.equal((await apply({ target: 'a..b' })).status, 422);

  // the pre-update backup is mandatory: when it cannot be written, the update does not start
  const blocker = join(work, 'not-a-dir');
  writeFileSync(blocker, 'x');
  updateSettings(runner.ledger, sb.config.paths.storage, { backup_storage_path: join(blocker, 'storage') });
  try {
    const nb = await job(await apply());
    assert.equal(nb.status, 'failed');
    assert.equal(nb.error?.step, 'update.backup');
    assert.match(nb.error!.message, /the pre-update backup failed, the update did not start/);
  } finally {
    updateSettings(runner.ledger, sb.config.paths.storage, { backup_storage_path: sb.config.paths.storage });
  }
  await unitsActive();

  assertSame(before, await snapshot());
  assert.equal((await history()).total, 0, 'no history row for a refused update');

  // a phpBorg job still running after the drain timeout: refused before any backup or stop; an
  // update offers no force, so the message does not suggest one
  const { insertId: running } = (await sb.query("INSERT INTO jobs (type, status, started_at) VALUES ('backup', 'running', NOW())")) as unknown as { insertId: number };
  const drainBefore = sb.config.drain_timeout_s;
  patchConfig(sb, { drain_timeout_s: 1 });
  try {
    const backups = (runner.ledger.prepare('SELECT COUNT(*) AS n FROM phpborg_backups').get() as { n: number }).n;
    const cli = await keeper(['update', 'apply', '--yes', '--json']);
    assert.equal(cli.code, 1, cli.stdout + cli.stderr);
    const err = lastJson(cli.stdout).error as { code: string; message: string };
    assert.equal(err.code, 'jobs_running');
    assert.match(err.message, new RegExp(`#${running} \\(backup\\)`), 'the message names the running job');
    assert.match(err.message, /nothing was changed/);
    assert.doesNotMatch(err.message, /force/, 'no force to suggest');
    assert.equal((runner.ledger.prepare('SELECT COUNT(*) AS n FROM phpborg_backups').get() as { n: number }).n, backups, 'no backup taken');
    assert.equal(await git(code, ['rev-parse', 'HEAD']), before.head);
    await unitsActive();
  } finally {
    await sb.query("UPDATE jobs SET status = 'completed', completed_at = NOW() WHERE id = ?", [running]);
    patchConfig(sb, { drain_timeout_s: drainBefore });
  }
  assert.equal((await history()).total, 0);
});

let firstUpdate: number;

test('update succeeds: fast-forward, migration recorded, frontend rebuilt, units active, jobs processed; a second apply gets 409', async () => {
  const distBefore = readFileSync(join(code, 'frontend/dist/assets/app.js'), 'utf8');
  const res = await apply();
  assert.equal(res.status, 202);
  const { job_id } = (await res.clone().json()) as { job_id: string };
  const second = await apply();
  assert.equal(second.status, 409);
  const body = (await second.json()) as { error: { code: string; job_id: string } };
  assert.equal(body.error.code, 'busy');
  assert.equal(body.error.job_id, job_id);

  const j = await job(res);
  assert.equal(j.status, 'succeeded', JSON.stringify(j.error));
  const r = j.result as ApplyResult;
  assert.equal(r.updated, true);
  assert.deepEqual(r.migrations, ['004_add_servers_timestamps.sql']);
  assert.deepEqual(r.dependencies, ['frontend']);
  assert.equal(await git(code, ['rev-parse', 'HEAD']), await git(sb.paths.origin, ['rev-parse', 'master']));
  assert.equal(await git(code, ['symbolic-ref', '--short', 'HEAD']), 'master', 'still on the branch');
  const cols = await sb.query<{ c: string }>("SELECT COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'servers' AND COLUMN_NAME = 'created_at'");
  assert.equal(cols.length, 1, 'servers.created_at exists');
  // as phpBorg's migration 004 does: every existing server is stamped with the migration's time
  const [stamped] = await sb.query<{ n: number; old: number }>('SELECT COUNT(*) AS n, SUM(created_at < NOW() - INTERVAL 1 HOUR) AS old FROM servers');
  assert.ok(Number(stamped.n) >= 3);
  assert.equal(Number(stamped.old), 0);
  const rec = await sb.query<{ filename: string; source: string }>('SELECT filename, source FROM keeper_migrations ORDER BY filename');
  assert.deepEqual(rec.map((x) => x.filename).slice(-1), ['004_add_servers_timestamps.sql']);
  assert.equal(rec.at(-1)!.source, 'keeper');
  assert.ok(rec.filter((x) => x.source === 'baseline').length >= 1, 'the installed migrations count as applied');
  const distAfter = readFileSync(join(code, 'frontend/dist/assets/app.js'), 'utf8');
  assert.notEqual(distAfter, distBefore);
  assert.match(distAfter, /1\.3\.0/);
  await unitsActive();
  await jobsProcessed();

  const h = await history();
  assert.equal(h.total, 1);
  const row = h.items[0];
  firstUpdate = row.id;
  assert.equal(row.status, 'succeeded');
  assert.equal(row.from_version, 'v1.2.3');
  assert.equal(row.to_version, 'v1.3.0');
  assert.equal(row.to_commit, await git(code, ['rev-parse', 'HEAD']));
  assert.equal(row.actor_name, 'admin');
  assert.ok(row.backup_id);
  const b = getBackup(runner.ledger, row.backup_id!);
  assert.equal(b?.backup_type, 'pre_update');
  assert.equal(b?.pinned, true, 'the pre-update backup is pinned');

  const s = await getJson<UpdateStatus>('/api/phpborg-update/status');
  assert.equal(s.available, false);
  assert.equal(s.commits_behind, 0);
  assert.equal(s.installed_version, 'v1.3.0');
});

test('already up to date: nothing done; older or diverged targets are refused', async () => {
  const backupsBefore = runner.ledger.prepare('SELECT COUNT(*) AS n FROM phpborg_backups').get() as { n: number };
  const j = await job(await apply());
  assert.equal(j.status, 'succeeded');
  assert.equal((j.result as ApplyResult).updated, false);
  assert.equal((runner.ledger.prepare('SELECT COUNT(*) AS n FROM phpborg_backups').get() as { n: number }).n, backupsBefore.n, 'no backup taken');
  assert.equal((await history()).total, 1, 'no history row');

  const older = await job(await apply({ target: 'v1.2.3' }));
  assert.equal(older.error?.code, 'not_fast_forward');
  // a commit that diverges from the installed one, published as a tag
  await git(pusher, ['fetch', '-q', 'origin']);
  await git(pusher, ['checkout', '-q', '-b', 'side', 'v1.2.3']);
  writeFileSync(join(pusher, 'SIDE.md'), 'a side branch\n');
  await git(pusher, ['add', 'SIDE.md']);
  await git(pusher, ['commit', '-q', '-m', 'side work']);
  await git(pusher, ['tag', 'side-1']);
  await git(pusher, ['push', '-q', 'origin', 'side-1']);
  await git(pusher, ['checkout', '-q', 'master']);
  await git(pusher, ['reset', '-q', '--hard', 'origin/master']);
  const side = await job(await apply({ target: 'side-1' }));
  assert.equal(side.error?.code, 'not_fast_forward');
  assert.equal((await history()).total, 1);
});

/** Pushes a bad update, fetches it (so the snapshot holds the fetched refs), applies, checks the rollback. */
async function rollsBack(how: 'api' | 'cli', failedStep: string, errorRe: RegExp): Promise<UpdateRow> {
  // fetched first, as `update check` would, so the snapshot already holds the fetched refs
  await git(code, ['fetch', '-q', '--tags', 'origin', '+refs/heads/master:refs/remotes/origin/master']);
  const before = await snapshot();
  const total = (await history()).total;
  if (how === 'api') {
    const j = await job(await apply());
    assert.equal(j.status, 'rolled_back', JSON.stringify(j.error ?? j.result));
    const r = j.result as ApplyResult;
    assert.equal(r.failed_step, failedStep);
    assert.equal(r.rollback?.outcome, 'succeeded');
  } else {
    const cli = await keeper(['update', 'apply', '--yes', '--json']);
    assert.equal(cli.code, 1, 'a rolled-back update is not a success');
    const out = lastJson(cli.stdout) as { error: { code: string; status: string; step?: string } };
    assert.equal(out.error.status, 'rolled_back', cli.stdout);
  }
  assertSame(before, await snapshot());
  await unitsActive();
  const h = await history();
  assert.equal(h.total, total + 1);
  const row = h.items[0];
  assert.equal(row.status, 'rolled_back');
  assert.equal(row.failed_step, failedStep);
  assert.match(row.error ?? '', errorRe);
  assert.equal(row.from_commit, before.head);
  return row;
}

/** A composer stand-in for this machine (which has none): check-platform-reqs against PHP 8.2.7 with json and pdo only. */
const COMPOSER_STANDIN = `#!/usr/bin/env node
// composer stand-in: check-platform-reqs --lock reads composer.json's and composer.lock's requirements
const fs = require('node:fs');
const path = require('node:path');
const args = process.argv.slice(2);
const wd = (args.find((a) => a.startsWith('--working-dir=')) || '--working-dir=.').slice(14);
if (args[0] !== 'check-platform-reqs') process.exit(0);
const have = { php: '8.2.7', 'ext-json': '8.2.7', 'ext-pdo': '8.2.7' };
const reqs = [];
const root = JSON.parse(fs.readFileSync(path.join(wd, 'composer.json'), 'utf8'));
for (const [k, v] of Object.entries(root.require || {})) reqs.push([k, v, root.name || '__root__']);
const lock = JSON.parse(fs.readFileSync(path.join(wd, 'composer.lock'), 'utf8'));
for (const p of lock.packages || []) for (const [k, v] of Object.entries(p.require || {})) reqs.push([k, v, p.name]);
let bad = 0;
console.log('Checking platform requirements using the lock file');
for (const [k, v, who] of reqs) {
  if (k !== 'php' && !k.startsWith('ext-')) continue;
  const got = have[k];
  const min = /^>=\\s*([0-9.]+)/.exec(v);
  const ok = got && (!min || got.localeCompare(min[1], 'en', { numeric: true }) >= 0);
  if (!ok) bad++;
  console.log(k.padEnd(12) + (got || 'n/a').padEnd(8) + (ok ? 'success' : who + ' requires ' + k + ' (' + v + ')   ' + (got ? 'failed' : 'missing')));
}
process.exit(bad ? 2 : 0);
`;

test("an update whose target needs a newer PHP or a missing extension is refused before anything changes", async () => {
  const standin = join(sb.paths.bin, 'composer');
  writeFileSync(standin, COMPOSER_STANDIN, { mode: 0o755 });
  const path = process.env.PATH;
  process.env.PATH = `${sb.paths.bin}:${path}`;
  const installedJson = readFileSync(join(code, 'composer.json'), 'utf8');
  const installedLock = readFileSync(join(code, 'composer.lock'), 'utf8');
  try {
    const json = JSON.parse(installedJson) as { require: Record<string, string> };
    json.require = { ...json.require, php: '>=8.3', 'ext-redis': '*' };
    const lock = JSON.parse(installedLock) as { packages: { name: string; require?: Record<string, string> }[] };
    lock.packages = lock.packages.map((p) => (p.name === 'predis/predis' ? { ...p, require: { php: '>=8.1', 'ext-redis': '*' } } : p));
    await push('Require PHP 8.3 and the redis extension', { 'composer.json': JSON.stringify(json, null, 4) + '\n', 'composer.lock': JSON.stringify(lock, null, 4) + '\n' });
    await git(code, ['fetch', '-q', '--tags', 'origin', '+refs/heads/master:refs/remotes/origin/master']);
    const before = await snapshot();
    const backups = (runner.ledger.prepare('SELECT COUNT(*) AS n FROM phpborg_backups').get() as { n: number }).n;
    const total = (await history()).total;
    const logFrom = sb.systemctlLog().length;
    const j = await job(await apply());
    assert.equal(j.status, 'failed');
    assert.equal(j.error?.code, 'platform_requirements');
    assert.equal(j.error?.step, 'update.precheck');
    assert.match(j.error!.message, /phpborg\/phpborg requires php \(>=8\.3\)\s+failed/);
    assert.match(j.error!.message, /requires ext-redis \(\*\)\s+missing/);
    assert.match(j.error!.message, /nothing was changed$/);
    assertSame(before, await snapshot());
    assert.equal((runner.ledger.prepare('SELECT COUNT(*) AS n FROM phpborg_backups').get() as { n: number }).n, backups, 'no backup taken');
    assert.equal((await history()).total, total, 'no history row');
    assert.deepEqual(sb.systemctlLog().slice(logFrom).filter((l) => / stop /.test(l)), [], 'no unit stopped');
    await unitsActive();
  } finally {
    // upstream takes it back: the next updates no longer touch composer.json/lock
    await push('Back to the installed requirements', { 'composer.json': installedJson, 'composer.lock': installedLock });
    process.env.PATH = path;
    rmSync(standin, { force: true });
  }
});

test('a migration with invalid SQL rolls back (CLI)', async () => {
  await push('Add a broken migration', { 'migrations/006_broken.sql': 'ALTER TABLE servers ADD COLUMN broken INT NULL;\nTHIS IS NOT SQL;\n' });
  await rollsBack('cli', 'update.migrations', /006_broken\.sql.*(syntax|ERROR)/s);
  await jobsProcessed();
});

test('a frontend build that fails rolls back', async () => {
  await push('Frontend build now fails', {
    'migrations/006_broken.sql': null,
    'frontend/build.mjs': "console.error('vite: cannot resolve ./missing.js');\nprocess.exit(1);\n",
  });
  await rollsBack('api', 'update.dependencies', /npm run build failed/);
});

test('a health probe that fails only on the new code rolls back', async () => {
  const build = readFileSync(join(code, 'frontend/build.mjs'), 'utf8');
  await push('Deploy something unhealthy', { 'frontend/build.mjs': build, 'api/public/HEALTH_FAIL': 'the new code is broken\n' });
  const row = await rollsBack('api', 'update.health', /http/);
  assert.ok(!existsSync(join(code, 'api/public/HEALTH_FAIL')));
  await jobsProcessed();

  // CLI history shows the same rows
  const cli = await keeper(['update', 'history', '--json']);
  assert.equal(cli.code, 0, cli.stderr);
  const items = (lastJson(cli.stdout) as { items: UpdateRow[] }).items;
  assert.equal(items[0].id, row.id);
  assert.deepEqual(items.map((x) => x.status), ['rolled_back', 'rolled_back', 'rolled_back', 'succeeded']);
});

test('when the rollback fails too: history failed, with the state and the emergency command', async () => {
  // a hostile build step that deletes this update's pre-update archive, then fails: nothing to roll back to
  const storage = sb.config.paths.storage;
  await push('A build that destroys the backups', {
    'api/public/HEALTH_FAIL': null,
    'frontend/build.mjs': `import { readdirSync, rmSync } from 'node:fs';\nconst newest = readdirSync(${JSON.stringify(storage)}).filter((f) => f.endsWith('-pre_update.tar.gz')).sort().pop();\nrmSync(${JSON.stringify(storage)} + '/' + newest);\nprocess.exit(1);\n`,
  });
  const j = await job(await apply());
  assert.equal(j.status, 'failed');
  assert.equal(j.error?.code, 'update_failed');
  assert.equal(j.error?.step, 'update.dependencies');
  assert.match(j.error!.message, /rollback .* failed too/);
  assert.match(j.error!.message, /emergency-restore/);
  const row = (await history()).items[0];
  assert.equal(row.status, 'failed');
  assert.equal(row.failed_step, 'update.dependencies');
  assert.match(String(row.details?.emergency_command), /scripts\/emergency-restore \d+ --config /);
  assert.match(String(row.details?.install_state), /State: the code is at/);
  // a half-updated install is not started: the units stay stopped and health says why until it is fixed
  const worker = await sb.systemctl('is-active', 'phpborg-worker@1');
  assert.notEqual(worker.stdout.trim(), 'active', 'the units are kept stopped');
  const health = await api('/api/health');
  assert.equal(health.status, 503);
  const install = ((await health.json()) as { checks: { name: string; ok: boolean; error?: string }[] }).checks.find((c) => c.name === 'install')!;
  assert.equal(install.ok, false);
  assert.match(String(install.error), /inconsistent since .*update/);
  const status = await keeper(['status', '--json']);
  assert.equal(status.code, 1, 'keeper status fails too');
  assert.equal((lastJson(status.stdout) as { checks: { name: string; ok: boolean }[] }).checks.find((c) => c.name === 'install')?.ok, false);
});

test('manual rollback of the successful update: preview, then the install is back at v1.2.3', async () => {
  const prev = await getJson<RollbackPreview>(`/api/phpborg-update/rollback/${firstUpdate}/preview`);
  assert.equal(prev.update.id, firstUpdate);
  assert.equal(prev.preview.backup.version, 'v1.2.3');
  assert.ok(prev.preview.safety_backup, 'a safety backup will be taken');
  // migration 004 stamped servers.created_at on every existing server after the pre-update backup:
  // counted from ids, none of them is "added since the backup"
  assert.equal(prev.preview.database?.added_from, 'ids');
  assert.equal(prev.preview.database?.servers_added, 0);
  assert.equal(prev.preview.database?.users_added, 0);
  const cli = await keeper(['update', 'rollback', String(firstUpdate), '--preview', '--json']);
  assert.equal(cli.code, 0, cli.stderr);
  assert.equal(((lastJson(cli.stdout) as unknown as RollbackPreview).preview.backup.version), 'v1.2.3');
  assert.equal((await api(`/api/phpborg-update/rollback/${firstUpdate}`, { method: 'POST', body: '{}' })).status, 422, 'confirm required');
  assert.equal((await api('/api/phpborg-update/rollback/9999', { method: 'POST', body: '{"confirm":true}' })).status, 404);

  const j = await job(await api(`/api/phpborg-update/rollback/${firstUpdate}`, { method: 'POST', body: JSON.stringify({ confirm: true }) }));
  assert.equal(j.status, 'succeeded', JSON.stringify(j.error));
  assert.equal(await git(code, ['describe', '--tags', '--always']), 'v1.2.3');
  // the whole install is back: the half-updated state left by the previous test is settled
  const install = ((await (await api('/api/health')).json()) as { checks: { name: string; ok: boolean }[] }).checks.find((c) => c.name === 'install')!;
  assert.equal(install.ok, true);
  const cols = await sb.query("SELECT 1 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'servers' AND COLUMN_NAME = 'created_at'");
  assert.equal(cols.length, 0, 'the migration is undone with the database');
  await unitsActive();
  await jobsProcessed();
  const h = await history();
  const row = h.items[0];
  assert.equal(row.kind, 'rollback');
  assert.equal(row.parent_id, firstUpdate);
  assert.equal(row.status, 'succeeded');
});

test('a newer successful update unpins the pre-update backups of the older updates', async () => {
  // upstream repairs its build (the hostile one above deleted a backup and failed)
  const build = await git(pusher, ['show', 'v1.3.0:frontend/build.mjs']);
  await push('Repair the frontend build', { 'frontend/build.mjs': build + '\n' });
  const older = (await history()).items.filter((r) => r.kind === 'update' && r.backup_id !== null && getBackup(runner.ledger, r.backup_id));
  assert.ok(older.some((r) => getBackup(runner.ledger, r.backup_id!)?.pinned), 'older pre-update backups are pinned before');
  const j = await job(await apply());
  assert.equal(j.status, 'succeeded', JSON.stringify(j.error ?? j.result));
  const row = (await history()).items[0];
  assert.equal(row.status, 'succeeded');
  assert.equal(getBackup(runner.ledger, row.backup_id!)?.pinned, true, 'the newest pre-update backup is pinned');
  for (const r of older) assert.equal(getBackup(runner.ledger, r.backup_id!)?.pinned, false, `update #${r.id}'s backup is no longer pinned`);
  await unitsActive();
});
