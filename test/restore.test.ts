// Restore against the sandbox: importDatabase round trip; backup → change everything → the preview
// names exactly those changes → restore (API) → code, config and keys byte-identical, every table's
// checksum equal, units active, the catalog intact plus the safety backup; a restore whose code fails
// its health probe rolls back to the exact pre-restore install (job rolled_back, with the reason);
// the CLI path (preview --json, restore --yes).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runner } from '../runtime/runner.ts';
import { createRunner } from '../scripts/runner.ts';
import { runOk } from '../runtime/exec.ts';
import { dumpDatabase } from '../runtime/mariadb.ts';
import { importDatabase, tableChecksums } from '../runtime/mariadb-import.ts';
import { listBackups } from '../state/catalog.ts';
import { updateSettings } from '../state/settings.ts';
import { readHead } from '../archive/index.ts';
import { buildPreview, type RestorePreview } from '../functions/restore/preview.ts';
import type { RestoreResult } from '../functions/restore/apply.ts';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import { apiRequest, installSnapshot, jobOf, keeperCli, lastJson, patchConfig, snapshotTree as tree, unitsActive as allUnitsActive } from './support/install.ts';

let sb: Sandbox;
let runner: Runner;
let token: string;
let work: string;

before(async () => {
  sb = await startSandbox();
  // a failing health probe should not take the default 20 s per attempt in tests
  patchConfig(sb, { health_timeout_s: 4 });
  runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
  // phpBorg's migration 001 seeds a retention of 3; this file counts every backup it makes
  updateSettings(runner.ledger, sb.config.paths.storage, { backup_retention_count: 10 });
  token = await sb.token();
  work = mkdtempSync(join(tmpdir(), 'keeper-restore-test-'));
});
after(async () => {
  await runner?.close().catch(() => {});
  await sb?.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

const api = (path: string, init: RequestInit = {}) => apiRequest(runner, token, path, init);
const job = (res: Response, timeoutMs = 80_000) => jobOf(runner, res, timeoutMs);

async function backup(notes: string): Promise<number> {
  const j = await job(await api('/api/phpborg-backup/create', { method: 'POST', body: JSON.stringify({ notes }) }));
  assert.equal(j.status, 'succeeded', JSON.stringify(j.error));
  return (j.result as { id: number }).id;
}

const keeper = (args: string[]) => keeperCli(sb, args);

// ── what a user compares ─────────────────────────────────────────────────────────────────────────
const snapshot = () => installSnapshot(sb);
const unitsActive = () => allUnitsActive(sb);

const git = (...args: string[]) => runOk('git', ['-c', `safe.directory=${sb.config.paths.code}`, '-C', sb.config.paths.code, ...args]);

// ─────────────────────────────────────────────────────────────────────────────────────────────────

test('importDatabase: drop, recreate, import → every table checksum equal; tables created later do not survive', async () => {
  const env = sb.readEnv().env;
  const before = await tableChecksums(env);
  const dump = join(work, 'db.sql');
  await dumpDatabase(env, dump);
  await sb.query("INSERT INTO servers (name, host) VALUES ('later', 'later.example.lan')");
  await sb.query('CREATE TABLE created_later (id INT PRIMARY KEY)');
  await sb.systemctl('stop', 'phpborg-workers.target', 'phpborg-scheduler');
  try {
    const r = await importDatabase(env, dump);
    assert.ok(['database', 'objects'].includes(r.recreated));
  } finally {
    await sb.systemctl('start', 'phpborg-workers.target', 'phpborg-scheduler');
  }
  assert.deepEqual(await tableChecksums(env), before);
});

let first: number;
let firstSnap: Awaited<ReturnType<typeof snapshot>>;

test('backup → change everything → preview names exactly those changes → restore: byte- and row-identical', async () => {
  first = await backup('restore test: the state to come back to');
  firstSnap = await snapshot();
  const c = sb.config;

  // change everything
  await sb.query("INSERT INTO servers (name, host) VALUES ('new-1', 'n1.example.lan'), ('new-2', 'n2.example.lan')");
  await sb.query("INSERT INTO archives (repo_id, server_id, nom, archive_id, start, end) VALUES (1, 1, 'a1', 'id-a1', NOW(), NOW()), (1, 1, 'a2', 'id-a2', NOW(), NOW()), (1, 1, 'a3', 'id-a3', NOW(), NOW())");
  await sb.query("INSERT INTO users (username, email, password, roles) VALUES ('newbie', 'newbie@example.test', 'x', '[\"ROLE_USER\"]')");
  const [setting] = await sb.query<{ key: string }>("SELECT `key` FROM settings WHERE `key` NOT LIKE '%pass%' ORDER BY id LIMIT 1");
  await sb.query('UPDATE settings SET value = CONCAT(COALESCE(value, \'\'), \'-changed\') WHERE `key` = ?', [setting.key]);
  await sb.query("INSERT INTO settings (`key`, value) VALUES ('restore_test_new_key', 'v')");
  const src = readdirSync(join(c.paths.code, 'src')).find((n) => n.endsWith('.php'))!;
  appendFileSync(join(c.paths.code, 'src', src), '\n// edited after the backup\n');
  await git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-am', 'edit after the backup');
  appendFileSync(join(c.paths.code, '.env'), 'RESTORE_TEST_KEY=1\n');
  unlinkSync(join(c.paths.ssh, 'id_ed25519.pub'));
  const sudoers = readdirSync(c.paths.sudoers).find((n) => n.startsWith(c.file_prefix))!;
  appendFileSync(join(c.paths.sudoers, sudoers), '# edited after the backup\n');
  writeFileSync(join(c.paths.sudoers, 'phpborg-added-later'), '# not in the backup\n', { mode: 0o440 });
  writeFileSync(join(c.paths.etc, 'ssl/added-later.pem'), 'not in the backup\n');
  appendFileSync(join(c.paths.ssh_borg, 'authorized_keys'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAddedAfterTheBackup added@later\n');
  appendFileSync(join(c.paths.code, 'README.md'), '\nlocal edit, never committed\n');

  // preview (API): exactly those changes
  const res = await api(`/api/phpborg-backup/${first}/restore-preview`);
  assert.equal(res.status, 200, await res.clone().text());
  const p = (await res.json()) as RestorePreview;
  assert.equal(p.backup.id, first);
  assert.equal(p.database?.servers_added, 2);
  assert.equal(p.database?.archives_added, 3);
  assert.equal(p.database?.users_added, 1);
  assert.deepEqual(p.settings, { modified: [setting.key], added: ['restore_test_new_key'], removed: [] });
  assert.deepEqual(p.config.env_changed, ['RESTORE_TEST_KEY']);
  assert.deepEqual(p.config.ssh, { added: [], removed: ['id_ed25519.pub'], changed: [] });
  assert.deepEqual(p.config.ssh_borg, { added: [], removed: [], changed: ['authorized_keys'] });
  assert.deepEqual(p.config.sudoers, { added: ['phpborg-added-later'], removed: [], changed: [sudoers] });
  assert.deepEqual(p.config.systemd, { added: [], removed: [], changed: [] });
  assert.deepEqual(p.config.etc, { added: ['ssl/added-later.pem'], removed: [], changed: [] });
  assert.deepEqual(p.config.not_in_backup, [join(c.paths.sudoers, 'phpborg-added-later'), join(c.paths.etc, 'ssl/added-later.pem')]);
  assert.deepEqual(p.code.local_edits, ['README.md']);
  assert.ok(p.warnings.some((w) => w.includes("replaced by the backup's: README.md")), p.warnings.join('; '));
  assert.ok(p.warnings.some((w) => w.startsWith('not in the backup, deleted by the restore (the safety backup keeps a copy)') && w.includes('phpborg-added-later')), p.warnings.join('; '));
  // counted from ids (the archive records each table's highest id): exact
  assert.equal(p.database?.added_from, 'ids');
  assert.deepEqual(p.database?.unknown, []);
  assert.equal(p.database?.tables.archives.added, 3);
  assert.equal(p.version.commits_behind, 1);
  assert.equal(p.version.commits_ahead, 0);
  assert.equal(p.version.downgrade, true);
  // its name comes from the moment it starts: a pattern, never a predicted timestamp
  assert.equal(p.safety_backup?.type, 'pre_restore');
  assert.equal(p.safety_backup?.name, 'phpborg-backup-YYYY-MM-DD-HHmmss-pre_restore.tar.gz');
  assert.equal(p.safety_backup?.directory, c.paths.storage);
  assert.equal(p.free_space.ok, true);
  assert.equal(p.database?.tables.servers.now, (p.database?.tables.servers.backup ?? 0) + 2);
  assert.ok(!JSON.stringify(p).includes('-changed'), 'no setting value in the preview');

  // restore (API)
  const bad = await api(`/api/phpborg-backup/${first}/restore`, { method: 'POST', body: JSON.stringify({}) });
  assert.equal(bad.status, 422, 'confirm: true is required');
  const logFrom = sb.systemctlLog().length;
  const j = await job(await api(`/api/phpborg-backup/${first}/restore`, { method: 'POST', body: JSON.stringify({ confirm: true }) }));
  assert.equal(j.status, 'succeeded', JSON.stringify(j.error ?? j.result));
  // the restored unit files were loaded: daemon-reload after the configuration step
  assert.ok(sb.systemctlLog().slice(logFrom).some((l) => / daemon-reload\b.* -> ok$/.test(l)), 'systemctl daemon-reload ran');
  const r = j.result as RestoreResult;
  assert.equal(r.outcome, 'succeeded');
  assert.ok(r.steps.every((s) => s.ok));

  const now = await snapshot();
  assert.deepEqual(now.code, firstSnap.code);
  assert.deepEqual(now.ssh, firstSnap.ssh);
  assert.deepEqual(now.sshBorg, firstSnap.sshBorg);
  assert.ok(!existsSync(join(c.paths.sudoers, 'phpborg-added-later')), 'a phpborg-* sudoers file not in the backup is deleted, as the preview said');
  assert.ok(!existsSync(join(c.paths.etc, 'ssl/added-later.pem')));
  for (const [rel, n] of Object.entries(tree(c.paths.ssh_borg))) assert.equal(n.mode, n.type === 'dir' ? 0o700 : 0o600, `ssh-borg/${rel} mode`);
  assert.equal(statSync(join(c.paths.code, '.install-credentials')).mode & 0o777, 0o600);
  // the Borg pool holding keeper's storage dir is not keeper's: mode untouched, nothing written beside the repositories
  assert.equal(statSync(sb.paths.pool).mode & 0o777, 0o775);
  assert.deepEqual(readdirSync(sb.paths.pool).filter((n) => n.startsWith('phpborg-backup-')), []);
  // frontend/node_modules is never archived: the result says it is missing, and that dist is there
  assert.ok(!existsSync(join(c.paths.code, 'frontend/node_modules')));
  assert.deepEqual({ missing: r.frontend?.node_modules_missing, dist: r.frontend?.dist_present }, { missing: true, dist: true });
  assert.match(r.message ?? '', /npm ci/);
  assert.deepEqual(now.sudoers, firstSnap.sudoers);
  assert.deepEqual(now.systemd, firstSnap.systemd);
  assert.deepEqual(now.etc, firstSnap.etc);
  assert.deepEqual(now.tables, firstSnap.tables);
  for (const [rel, n] of Object.entries(tree(c.paths.ssh))) assert.equal(n.mode, n.type === 'dir' ? 0o700 : n.type === 'file' ? 0o600 : undefined, `ssh/${rel} mode`);
  await unitsActive();
  const jobId = await sb.pushJob();
  await sb.waitForJob(jobId);

  // the ledger was not restored: the backup and the safety one are listed
  const list = listBackups(runner.ledger);
  assert.ok(list.some((b) => b.id === first));
  assert.equal(list.find((b) => b.id === r.safety_backup?.id)?.backup_type, 'pre_restore');
  // nothing left beside the code dir
  assert.deepEqual(readdirSync(join(c.paths.code, '..')).filter((n) => n.includes('keeper')), []);
});

test('an archive made before ids were recorded: the preview counts what timestamps can tell and says what is unknown', async () => {
  const row = listBackups(runner.ledger).find((b) => b.id === first)!;
  const head = await readHead(row.filepath, { passphrase: null });
  assert.ok(head.metadata.table_ids?.servers?.max_id, 'new archives record each table\'s highest id');
  delete head.metadata.table_ids;
  await sb.query("INSERT INTO servers (name, host) VALUES ('after-old-archive', 'old.example.lan')");
  const p = await buildPreview({ config: sb.config, ledger: runner.ledger, file: row.filepath, passphrase: null, backup: row, head });
  assert.equal(p.database?.added_from, 'timestamps');
  assert.equal(p.database?.servers_added, null, 'phpBorg servers have no trustworthy creation time');
  assert.deepEqual(p.database?.unknown, ['servers_added']);
  assert.equal(typeof p.database?.archives_added, 'number');
  assert.equal(typeof p.database?.users_added, 'number');
  assert.ok(p.warnings.some((w) => /predates per-table id records: servers_added cannot be known/.test(w)), p.warnings.join('; '));
  await sb.query("DELETE FROM servers WHERE name = 'after-old-archive'");
});

test('a restore whose code fails its health probe rolls back to the exact pre-restore install', async () => {
  const c = sb.config;
  const fail = join(c.paths.code, 'api', 'public', 'HEALTH_FAIL');
  writeFileSync(fail, 'unhealthy on purpose\n');
  const broken = await backup('code that fails its health probe');
  unlinkSync(fail);
  await sb.query("INSERT INTO servers (name, host) VALUES ('after-broken', 'ab.example.lan')");
  appendFileSync(join(c.paths.code, '.env'), 'AFTER_BROKEN=1\n');
  const before = await snapshot();

  const j = await job(await api(`/api/phpborg-backup/${broken}/restore`, { method: 'POST', body: JSON.stringify({ confirm: true }) }));
  assert.equal(j.status, 'rolled_back', JSON.stringify(j.error ?? j.result));
  const r = j.result as RestoreResult;
  assert.equal(r.outcome, 'rolled_back');
  assert.equal(r.failed_step, 'restore.health');
  assert.match(r.message, /^restore failed at restore\.health: health check failed: .*http.*503.*; rolled back to phpborg-backup-.*-pre_restore\.tar\.gz$/);
  const after = await snapshot();
  assert.deepEqual(after, before);
  assert.ok(!existsSync(fail));
  await unitsActive();
});

test('CLI: keeper restore --preview --json, then keeper restore --yes', async () => {
  const pv = await keeper(['restore', String(first), '--preview', '--json']);
  assert.equal(pv.code, 0, pv.stderr);
  const { preview } = lastJson(pv.stdout) as { preview: RestorePreview };
  assert.equal(preview.backup.id, first);
  assert.ok(preview.config.env_changed.includes('AFTER_BROKEN'));

  const vf = await keeper(['backup', 'verify', String(first), '--json']);
  assert.equal(vf.code, 0, vf.stderr);
  const checks = lastJson(vf.stdout).checks as { name: string; ok: boolean }[];
  assert.ok(checks.length >= 5 && checks.every((c) => c.ok), JSON.stringify(checks));

  const no = await keeper(['restore', String(first)]);
  assert.equal(no.code, 2, 'not a terminal and no --yes: refused');

  const catalogBefore = listBackups(runner.ledger).map((b) => b.id);
  const res = await keeper(['restore', String(first), '--yes', '--json']);
  assert.equal(res.code, 0, res.stderr);
  const out = lastJson(res.stdout) as unknown as RestoreResult;
  assert.equal(out.outcome, 'succeeded');
  // restoring the oldest backup loses none of the newer ones (the broken one, every safety backup)
  const catalogAfter = listBackups(runner.ledger).map((b) => b.id);
  assert.deepEqual(catalogAfter.filter((id) => id !== out.safety_backup!.id).sort(), [...catalogBefore].sort());
  assert.ok(catalogBefore.length >= 4, `first, broken and two safety backups: ${catalogBefore}`);
  const now = await snapshot();
  assert.deepEqual(now.code, firstSnap.code);
  assert.deepEqual(now.tables, firstSnap.tables);
  await unitsActive();
});
