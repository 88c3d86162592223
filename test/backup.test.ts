// Backups against the sandbox: stock-tool round trips (plain and encrypted), the maintenance window,
// jobs queued during a backup, a failing dump, a helper killed mid-archive, retention, the
// passphrase kept out of `ps`, and the catalog/settings routes and CLI.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runner } from '../runtime/runner.ts';
import { createRunner } from '../scripts/runner.ts';
import { run } from '../runtime/exec.ts';
import { dbConnectionOptions } from '../runtime/probes.ts';
import { maintenanceUnits } from '../runtime/install.ts';
import { getJob, listEvents, listJobs, type JobView } from '../state/jobs.ts';
import { getBackup, insertBackup, listBackups, markSucceeded, setPinned } from '../state/catalog.ts';
import { openOperation, openOperations, unitsStopping } from '../state/operations.ts';
import { ledgerPath, openLedger } from '../state/ledger.ts';
import { listAudit } from '../state/audit.ts';
import { codeExcluder } from '../functions/backup/sources.ts';
import { applyRetention } from '../functions/backup/remove.ts';
import type { BackupResult } from '../functions/backup/core.ts';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import { apiRequest, keeperCli, lastJson, patchConfig, snapshotTree, unitsActive as maintenanceUnitsActive } from './support/install.ts';

let sb: Sandbox;
let runner: Runner;
let token: string;
let work: string;
const PASSPHRASE = `pass-${randomBytes(9).toString('hex')}`;

before(async () => {
  sb = await startSandbox();
  runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
  token = await sb.token();
  work = mkdtempSync(join(tmpdir(), 'keeper-backup-test-'));
});
after(async () => {
  await runner?.close().catch(() => {});
  await sb?.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

const api = (path: string, init: RequestInit = {}) => apiRequest(runner, token, path, init);

async function apiBackup(body: Record<string, unknown> = {}): Promise<{ id: string; job: JobView }> {
  const res = await api('/api/phpborg-backup/create', { method: 'POST', body: JSON.stringify(body) });
  assert.equal(res.status, 202, await res.clone().text());
  const { job_id } = (await res.json()) as { job_id: string };
  return { id: job_id, job: await runner.jobs.wait(job_id, 60_000) };
}

const keeper = (args: string[], opts: { input?: string } = {}) => keeperCli(sb, args, opts);

// ── comparing what came out with what went in ────────────────────────────────────────────────────

const tree = (root: string, exclude?: (rel: string, isDir: boolean) => boolean) => new Map(Object.entries(snapshotTree(root, { exclude })));

async function checksums(db: string): Promise<Record<string, string>> {
  const tables = await sb.rootQuery<{ t: string }>(
    "SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
    [db],
  );
  const out: Record<string, string> = {};
  for (const { t } of tables) {
    const [r] = await sb.rootQuery<{ Checksum: string | number | null }>(`CHECKSUM TABLE \`${db}\`.\`${t}\``);
    out[t] = String(r.Checksum);
  }
  return out;
}

/** Extracts a (decrypted) .tar.gz with GNU tar and checks it against the live sandbox. */
async function checkExtracted(tgz: string, label: string, opts: { compareDb: boolean }): Promise<Record<string, unknown>> {
  const list = await run('tar', ['-tzf', tgz]);
  assert.equal(list.code, 0, list.stderr);
  const entries = list.stdout.trim().split('\n');
  const root = entries[0].split('/')[0];
  assert.match(root, /^phpborg-backup-\d{4}-\d{2}-\d{2}-\d{6}$/);
  assert.equal(entries[0], `${root}/metadata.json`, 'metadata.json is the first entry');
  assert.equal(entries.at(-1), `${root}/manifest.json`, 'manifest.json is the last entry');
  const dir = join(work, label);
  rmSync(dir, { recursive: true, force: true });
  (await import('node:fs')).mkdirSync(dir, { recursive: true });
  const x = await run('tar', ['-xzf', tgz, '-C', dir]);
  assert.equal(x.code, 0, x.stderr);
  const top = join(dir, root);

  // code/ equals the sandbox code byte for byte: contents, modes, symlinks; excluded dirs absent
  const want = tree(sb.config.paths.code, codeExcluder(sb.config.exclude_dirs));
  const got = tree(join(top, 'code'));
  assert.ok(want.size > 50, 'the sandbox code tree is not trivial');
  assert.ok([...want.values()].some((n) => n.type === 'symlink'), 'the sandbox code holds symlinks');
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [k, n] of want) assert.deepEqual(got.get(k), n, `code/${k}`);
  assert.equal(readFileSync(join(top, 'config', 'env.backup'), 'utf8'), readFileSync(join(sb.config.paths.code, '.env'), 'utf8'));
  assert.ok(existsSync(join(top, 'ssh', 'id_ed25519')));
  assert.ok(readdirSync(join(top, 'config', 'sudoers')).every((n) => n.startsWith('phpborg-')));

  const metadata = JSON.parse(readFileSync(join(top, 'metadata.json'), 'utf8')) as Record<string, unknown>;
  const dump = readFileSync(join(top, 'database.sql'));
  assert.equal(createHash('sha256').update(dump).digest('hex'), metadata.database_sha256);
  assert.equal(dump.length, metadata.database_size_bytes);

  // settings.json: secrets only as keyed hashes
  const settings = JSON.parse(readFileSync(join(top, 'settings.json'), 'utf8')) as { key: string; value: string | null; secret: boolean }[];
  const live = await sb.query<{ key: string; value: string | null }>('SELECT `key`, `value` FROM settings');
  for (const s of settings) {
    const clear = live.find((l) => l.key === s.key)?.value;
    if (s.secret && clear) assert.ok(s.value!.startsWith('hmac-sha256:') && !s.value!.includes(clear), `settings.json leaks ${s.key}`);
  }
  assert.ok(settings.some((s) => s.secret), 'some settings are secret');

  if (opts.compareDb) {
    const scratch = `scratch_${label.replace(/\W/g, '_')}`;
    await sb.rootQuery(`DROP DATABASE IF EXISTS \`${scratch}\`; CREATE DATABASE \`${scratch}\``);
    const load = await run('mariadb', ['--no-defaults', `--socket=${sb.paths.mysqlSocket}`, '-uroot', scratch], { input: dump });
    assert.equal(load.code, 0, load.stderr);
    const [a, b] = await Promise.all([checksums(sb.env.DB_NAME), checksums(scratch)]);
    assert.ok(Object.keys(a).length >= 5);
    assert.deepEqual(b, a, 'every table checksums equal');
    await sb.rootQuery(`DROP DATABASE \`${scratch}\``);
  }
  return metadata;
}

/** The stop and start calls of the maintenance units in systemctl.log since `fromLine`. */
function unitCalls(fromLine: number): { at: number; verb: string }[] {
  const units = maintenanceUnits(sb.config, sb.env);
  return sb
    .systemctlLog()
    .slice(fromLine)
    .map((l) => l.split(' '))
    .filter(([, verb, ...rest]) => (verb === 'stop' || verb === 'start') && rest.some((u) => units.includes(u)))
    .map(([at, verb]) => ({ at: Date.parse(at), verb }));
}

function assertWindowMatchesLog(r: BackupResult, fromLine: number): void {
  const calls = unitCalls(fromLine);
  assert.deepEqual(calls.map((c) => c.verb), ['stop', 'start'], 'one stop and one start of the units');
  const start = Date.parse(r.maintenance_window.started_at);
  const end = Date.parse(r.maintenance_window.ended_at);
  assert.ok(calls[0].at >= start && calls[1].at <= end, `systemctl calls ${JSON.stringify(calls)} inside the window ${start}..${end}`);
  assert.ok(Math.abs(end - start - r.maintenance_window_ms) < 50, 'the recorded window matches its bounds');
  assert.ok(r.maintenance_window_ms < r.duration_ms, 'units down only for part of the backup');
  // the dump happened inside the window, the archive after it
  const events = listEvents(runner.ledger, getBackup(runner.ledger, r.id)!.job_id!);
  const at = (step: string) => Date.parse(events.find((e) => e.step === step)!.at);
  assert.ok(at('backup.dump') >= start && at('backup.dump') <= end);
  assert.ok(at('backup.archive') >= end, 'archiving starts after the units are back');
}

const unitsActive = () => maintenanceUnitsActive(sb, maintenanceUnits(sb.config, sb.env));

const storageNames = () => readdirSync(sb.config.paths.storage);

// ── the tests ───────────────────────────────────────────────────────────────────────────────────

describe('backup', () => {
  test('plain backup through the API: sha256sum -c, tar -xzf, code and every table equal the sandbox', async () => {
    const logFrom = sb.systemctlLog().length;
    const { job } = await apiBackup({ notes: 'first' });
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    const r = job.result as BackupResult;
    assert.equal(r.encrypted, false);
    // settings were seeded from phpBorg's own `settings` rows on first use
    const seeded = await sb.query<{ value: string }>("SELECT `value` FROM settings WHERE `key` = 'backup_retention_count'");
    assert.equal(r.retention.keep, Number(seeded[0].value));
    for (const k of ['id', 'file', 'sha256', 'size_bytes', 'encrypted', 'maintenance_window_ms', 'duration_ms']) assert.ok(k in r, k);
    assert.match(r.filename, /^phpborg-backup-\d{4}-\d{2}-\d{2}-\d{6}-manual\.tar\.gz$/);
    assert.equal(lstatSync(r.file).mode & 0o777, 0o600);
    assert.equal(lstatSync(sb.config.paths.storage).mode & 0o777, 0o700);
    const sum = await run('sha256sum', ['-c', `${r.filename}.sha256`], { cwd: sb.config.paths.storage });
    assert.equal(sum.code, 0, sum.stdout + sum.stderr);
    const md = await checkExtracted(r.file, 'plain', { compareDb: true });
    assert.equal(md.backup_type, 'manual');
    assert.equal(md.notes, 'first');
    assert.equal(md.encrypted, false);
    assert.equal(md.maintenance_window_ms, r.maintenance_window_ms);
    const row = getBackup(runner.ledger, r.id)!;
    assert.equal(row.status, 'succeeded');
    assert.equal(row.hash_sha256, r.sha256);
    assert.equal(row.maintenance_window_ms, r.maintenance_window_ms);
    assertWindowMatchesLog(r, logFrom);
    await unitsActive();
  });

  test('encrypted backup through the CLI: openssl enc -d, round trip, the passphrase never in ps', async () => {
    const pf = join(work, 'pass');
    writeFileSync(pf, PASSPHRASE + '\n', { mode: 0o600 });
    const set = await keeper(['settings', 'set-passphrase', '--passphrase-file', pf, '--enable', '--json']);
    assert.equal(set.code, 0, set.stderr + set.stdout);
    const s = lastJson(set.stdout);
    assert.equal((s.backup_encryption_passphrase as { set: boolean }).set, true);
    assert.ok(!set.stdout.includes(PASSPHRASE) && !set.stderr.includes(PASSPHRASE));

    const logFrom = sb.systemctlLog().length;
    let sampling = true;
    let samples = 0;
    const leaks: string[] = [];
    const sampler = (async () => {
      while (sampling) {
        for (const args of [['-eww', '-o', 'pid=,args='], ['axeww']]) {
          const ps = await run('ps', args);
          samples++;
          for (const line of ps.stdout.split('\n')) if (line.includes(PASSPHRASE)) leaks.push(line);
        }
        await new Promise((r) => setTimeout(r, 30));
      }
    })();
    const out = await keeper(['backup', 'create', '--notes', 'encrypted one', '--json']);
    sampling = false;
    await sampler;
    assert.equal(out.code, 0, out.stderr + out.stdout);
    assert.ok(samples > 10, `ps sampled ${samples} times`);
    assert.deepEqual(leaks, [], 'the passphrase appeared in ps output');
    const r = lastJson(out.stdout) as unknown as BackupResult;
    for (const k of ['id', 'file', 'sha256', 'size_bytes', 'encrypted', 'maintenance_window_ms', 'duration_ms']) assert.ok(k in r, k);
    assert.equal(r.encrypted, true);
    assert.ok(!JSON.stringify(r).includes(PASSPHRASE));
    assert.ok(readFileSync(r.file).subarray(0, 8).equals(Buffer.from('Salted__')));

    const sum = await run('sha256sum', ['-c', `${r.filename}.sha256`], { cwd: sb.config.paths.storage });
    assert.equal(sum.code, 0, sum.stdout + sum.stderr);
    const plain = join(work, 'decrypted.tar.gz');
    const dec = await run('openssl', ['enc', '-d', '-aes-256-cbc', '-pbkdf2', '-iter', '100000', '-md', 'sha256', '-in', r.file, '-out', plain, '-pass', `file:${pf}`]);
    assert.equal(dec.code, 0, dec.stderr);
    const md = await checkExtracted(plain, 'encrypted', { compareDb: true });
    assert.equal(md.encrypted, true);
    assert.equal(md.encryption_algo, 'AES-256-CBC');
    assertWindowMatchesLog(r, logFrom);
    // nothing of the job (params, events, result, log) holds the passphrase, nor any ledger table but settings
    const job = getJob(runner.ledger, getBackup(runner.ledger, r.id)!.job_id!)!;
    assert.ok(!JSON.stringify(listEvents(runner.ledger, job.id)).includes(PASSPHRASE));
    assert.ok(!JSON.stringify(job).includes(PASSPHRASE), 'the job row holds the passphrase');
    const tables = runner.ledger.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'settings'").all() as { name: string }[];
    for (const { name } of tables) {
      const rows = runner.ledger.prepare(`SELECT * FROM "${name}"`).all();
      assert.ok(!JSON.stringify(rows).includes(PASSPHRASE), `the ledger table ${name} holds the passphrase`);
    }
  });

  test('jobs pushed to Redis during the whole backup are all processed afterwards', async () => {
    const pushed: number[] = [];
    const res = await api('/api/phpborg-backup/create', { method: 'POST', body: JSON.stringify({ notes: 'busy' }) });
    assert.equal(res.status, 202);
    const { job_id } = (await res.json()) as { job_id: string };
    // a second backup meanwhile → 409 naming the running job
    const busy = await api('/api/phpborg-backup/create', { method: 'POST', body: '{}' });
    assert.equal(busy.status, 409);
    assert.equal(((await busy.json()) as { error: { job_id: string } }).error.job_id, job_id);
    let done = false;
    const pusher = (async () => {
      while (!done) {
        pushed.push(await sb.pushJob({ type: 'backup' }));
        await new Promise((r) => setTimeout(r, 60));
      }
    })();
    const job = await runner.jobs.wait(job_id, 60_000);
    done = true;
    await pusher;
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    assert.ok(pushed.length >= 10, `pushed ${pushed.length} jobs`);
    for (const id of pushed) await sb.waitForJob(id, 'completed', 20_000);
    assert.equal(await sb.queueLength(), 0);
  });

  test('a failing dump (the database password no longer matches .env) leaves the units running and no backup', async () => {
    const before = storageNames();
    const res = await api('/api/phpborg-backup/create', { method: 'POST', body: JSON.stringify({ notes: 'will fail' }) });
    const { job_id } = (await res.json()) as { job_id: string };
    // once the units are being stopped, the password changes under keeper's feet
    const user = sb.env.DB_USER;
    let changed = false;
    for (let i = 0; i < 400 && !changed; i++) {
      if (listEvents(runner.ledger, job_id).some((e) => e.step === 'backup.stop_units')) {
        const hosts = await sb.rootQuery<{ Host: string }>('SELECT Host FROM mysql.user WHERE User = ?', [user]);
        for (const { Host } of hosts) await sb.rootQuery(`ALTER USER ?@? IDENTIFIED BY 'not-the-env-password'`, [user, Host]);
        changed = true;
      } else await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(changed, 'the backup reached the maintenance window');
    const job = await runner.jobs.wait(job_id, 60_000);
    const hosts = await sb.rootQuery<{ Host: string }>('SELECT Host FROM mysql.user WHERE User = ?', [user]);
    for (const { Host } of hosts) await sb.rootQuery('ALTER USER ?@? IDENTIFIED BY ?', [user, Host, sb.env.DB_PASSWORD]);
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.step, 'backup.dump');
    assert.match(job.error!.message, /mariadb-dump failed|Access denied/);
    assert.ok(!job.error!.message.includes(sb.env.DB_PASSWORD), 'the DB password is not in the error');
    await unitsActive();
    const row = listBackups(runner.ledger).find((b) => b.job_id === job_id)!;
    assert.equal(row.status, 'failed');
    assert.deepEqual(storageNames().sort(), before.sort(), 'no file left behind');
    assert.equal(openOperations(runner.ledger).length, 0);
  });

  test('a helper killed mid-archive is recovered at once: nothing that looks complete, no partial, the job says so', async () => {
    // a big incompressible file makes the archive step last long enough to be interrupted
    const big = join(sb.config.paths.code, 'releases', 'kill-test.bin');
    writeFileSync(big, randomBytes(96 * 1024 * 1024));
    try {
      const res = await api('/api/phpborg-backup/create', { method: 'POST', body: '{}' });
      const { job_id } = (await res.json()) as { job_id: string };
      let partial: string | undefined;
      for (let i = 0; i < 1000 && !partial; i++) {
        if (listEvents(runner.ledger, job_id).some((e) => e.step === 'backup.archive')) {
          partial = storageNames().find((n) => n.endsWith('.tar.gz.partial'));
        }
        if (!partial) await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(partial, 'the archive was being written');
      process.kill(getJob(runner.ledger, job_id)!.helper_pid!, 'SIGKILL');
      const job = await runner.jobs.wait(job_id, 30_000);
      assert.equal(job.status, 'failed');
      const row = listBackups(runner.ledger).find((b) => b.job_id === job_id)!;
      assert.notEqual(row.status, 'succeeded');
      assert.ok(!storageNames().includes(row.filename), 'no file under the final name');
      assert.ok(storageNames().every((n) => !n.startsWith('phpborg-backup-') || existsSync(join(sb.config.paths.storage, `${n.replace(/\.(sha256|json)$/, '')}.sha256`))));
      // recovered as soon as the helper was gone: the partial and the dump are removed, the entry closed
      assert.equal(job.error?.code, 'interrupted', JSON.stringify(job.error));
      assert.match(job.error!.message, /interrupted at backup\.archive.*nothing was changed/);
      assert.deepEqual(storageNames().filter((n) => n.startsWith('.') || n.endsWith('.partial')), [], 'temporary files removed');
      assert.equal(row.status, 'failed');
      assert.equal(openOperations(runner.ledger).length, 0);

      // an entry left open by a process that is gone (units stopped) is recovered at the next start
      const dead = spawnSync('true').pid!;
      const orphan = openOperation(runner.ledger, { jobId: null, kind: 'backup', pid: dead });
      unitsStopping(runner.ledger, orphan, ['phpborg-worker@2']);
      assert.equal((await sb.systemctl('stop', 'phpborg-worker@2')).code, 0);
      await runner.close();
      runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
      const recovery = listJobs(runner.ledger, { type: 'operation.recover', limit: 1 })[0];
      assert.ok(recovery, 'a recovery job was started');
      const ended = await runner.jobs.wait(recovery.id, 30_000);
      assert.equal(ended.status, 'failed');
      assert.equal(ended.error?.code, 'interrupted');
      assert.equal(openOperations(runner.ledger).length, 0);
      await unitsActive();
    } finally {
      rmSync(big, { force: true });
    }
  });

  test('the dump\'s defaults file lives under <state>/tmp, never /tmp; a helper killed holding it leaves it there until the next start sweeps it', async () => {
    const tmpRoot = join(sb.config.paths.state, 'tmp');
    const inSharedTmp = () =>
      readdirSync(tmpdir())
        .filter((n) => n.startsWith('keeper-my-'))
        .filter((n) => {
          try {
            return readFileSync(join(tmpdir(), n, 'client.cnf'), 'utf8').includes(sb.env.DB_PASSWORD);
          } catch {
            return false;
          }
        });
    const defaultsFiles = () =>
      existsSync(tmpRoot) ? readdirSync(tmpRoot).filter((d) => /^\d+-my-/.test(d) && existsSync(join(tmpRoot, d, 'client.cnf'))) : [];
    // a table locked by another session holds mariadb-dump (and the row counts) inside the window
    const lock = await mysql.createConnection(dbConnectionOptions(sb.env));
    let unlocked = false;
    const unlock = async () => {
      if (!unlocked) await lock.end().catch(() => {});
      unlocked = true;
    };
    try {
      await lock.query('LOCK TABLES `archives` WRITE');
      const res = await api('/api/phpborg-backup/create', { method: 'POST', body: '{}' });
      const { job_id } = (await res.json()) as { job_id: string };
      let held: string[] = [];
      for (let i = 0; i < 3000 && !held.length; i++) {
        held = defaultsFiles();
        if (!held.length) await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(held.length, 1, 'a defaults file under <state>/tmp while the dump runs');
      const dir = join(tmpRoot, held[0]);
      const helperPid = getJob(runner.ledger, job_id)!.helper_pid!;
      assert.ok(held[0].startsWith(`${helperPid}-`), `named after the helper's pid ${helperPid}: ${held[0]}`);
      assert.equal(statSync(tmpRoot).mode & 0o777, 0o700);
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      assert.equal(statSync(join(dir, 'client.cnf')).mode & 0o777, 0o600);
      assert.deepEqual(inSharedTmp(), [], 'no defaults file with this install\'s password under /tmp');

      process.kill(helperPid, 'SIGKILL');
      const job = await runner.jobs.wait(job_id, 30_000);
      assert.equal(job.status, 'failed');
      assert.equal(job.error?.code, 'interrupted');
      await unlock();
      assert.ok(!existsSync(dir), 'the recovery removed the dead helper\'s defaults file at once');

      // the sweep at start removes what a dead process left, and keeps a live process's dir
      const dead = join(tmpRoot, `${spawnSync('true').pid}-my-left`);
      mkdirSync(dead, { mode: 0o700 });
      const live = mkdtempSync(join(tmpRoot, `${process.pid}-test-`));
      await runner.close();
      runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
      assert.ok(!existsSync(dead), 'the next start removed a dead process\'s temp dir');
      assert.ok(existsSync(live), 'a live process\'s temp dir is kept');
      rmSync(live, { recursive: true, force: true });
      assert.deepEqual(inSharedTmp(), []);
      assert.equal(openOperations(runner.ledger).length, 0);
      assert.deepEqual(storageNames().filter((n) => n.startsWith('.')), [], 'temporary files removed');
      await unitsActive();
    } finally {
      await unlock();
    }
  });

  test('drain: a phpBorg job still running is named and no unit is stopped; --force goes on without touching it', async () => {
    const { insertId: id } = (await sb.query("INSERT INTO jobs (type, status, started_at) VALUES ('backup', 'running', NOW())")) as unknown as { insertId: number };
    const drainBefore = sb.config.drain_timeout_s;
    patchConfig(sb, { drain_timeout_s: 1 });
    try {
      const logFrom = sb.systemctlLog().length;
      const before = storageNames();
      const refused = await keeper(['backup', 'create', '--json']);
      assert.equal(refused.code, 1, refused.stderr + refused.stdout);
      const err = lastJson(refused.stdout).error as { code: string; message: string };
      assert.equal(err.code, 'jobs_running');
      assert.match(err.message, new RegExp(`#${id} \\(backup\\)`), 'the message names the running job');
      assert.match(err.message, /--force/, 'the message says how to go on');
      assert.deepEqual(unitCalls(logFrom), [], 'no unit was stopped');
      assert.deepEqual(storageNames().sort(), before.sort(), 'nothing written');

      const forced = await keeper(['backup', 'create', '--force', '--notes', 'forced', '--json']);
      assert.equal(forced.code, 0, forced.stderr + forced.stdout);
      const r = lastJson(forced.stdout) as unknown as BackupResult;
      assert.ok(r.warnings.some((w) => w.includes(`#${id}`)), JSON.stringify(r.warnings));
      const [row] = await sb.query<{ status: string }>('SELECT status FROM jobs WHERE id = ?', [id]);
      assert.equal(row.status, 'running', 'the running job was never killed or changed');
      await unitsActive();
    } finally {
      await sb.query("UPDATE jobs SET status = 'completed', completed_at = NOW() WHERE id = ?", [id]);
      patchConfig(sb, { drain_timeout_s: drainBefore });
    }
  });

  test('retention keeps the newest per type, the newest success and pre_update, pinned and in-use backups', async () => {
    const dir = mkdtempSync(join(work, 'ret-'));
    const ledger = openLedger(ledgerPath(join(dir, 'state')));
    const files = new Map<number, string>();
    try {
      const add = (type: string, minute: number, status: 'succeeded' | 'failed' = 'succeeded') => {
        const name = `phpborg-backup-2025-01-01-00${String(minute).padStart(2, '0')}00-${type}.tar.gz`;
        const file = join(dir, name);
        writeFileSync(file, 'x');
        writeFileSync(`${file}.sha256`, 'x');
        writeFileSync(`${file}.json`, '{}');
        const id = insertBackup(ledger, { filename: name, filepath: file, backup_type: type, encrypted: false, created_at: `2025-01-01T00:${String(minute).padStart(2, '0')}:00.000Z`, created_by: 1, created_by_name: 'admin' });
        if (status === 'succeeded') {
          markSucceeded(ledger, id, { size_bytes: 1, hash_sha256: '0'.repeat(64), mac: null, phpborg_version: null, git_commit: null, php_version: null, mysql_version: null, node_version: null, borg_version: null, files_count: 1, database_size_bytes: 1, maintenance_window_ms: 1, sha256_path: `${file}.sha256`, json_path: `${file}.json` });
        } else ledger.prepare("UPDATE phpborg_backups SET status = 'failed' WHERE id = ?").run(id);
        files.set(id, file);
        return id;
      };
      const m1 = add('manual', 1);
      const m2 = add('manual', 2);
      const m3 = add('manual', 3); // pinned
      const m4 = add('manual', 4); // in use by a running verify
      const m5 = add('manual', 5);
      const p1 = add('pre_update', 6);
      const p2 = add('pre_update', 7);
      const s1 = add('scheduled', 8);
      const s2 = add('scheduled', 9); // newest success overall
      const f1 = add('manual', 10, 'failed');
      setPinned(ledger, m3, true);
      ledger
        .prepare("INSERT INTO jobs (id, type, status, params_json, created_at) VALUES ('job-verify', 'backup.verify', 'running', ?, ?)")
        .run(JSON.stringify({ backup_id: m4 }), new Date().toISOString());
      const r = await applyRetention(ledger, 1, { id: null, name: 'test' });
      const left = listBackups(ledger).map((b) => b.id).sort((a, b) => a - b);
      assert.deepEqual(left, [m3, m4, m5, p2, s2, f1].sort((a, b) => a - b));
      assert.deepEqual(r.deleted.map((d) => d.id).sort((a, b) => a - b), [m1, m2, p1, s1].sort((a, b) => a - b));
      for (const [id, f] of files) {
        const gone = [m1, m2, p1, s1].includes(id);
        for (const x of [f, `${f}.sha256`, `${f}.json`]) assert.equal(existsSync(x), !gone, `${x} ${gone ? 'deleted' : 'kept'}`);
      }
      const audits = listAudit(ledger, { action: 'backup.retention_delete' }).items;
      assert.equal(audits.length, 4);
      // a second run deletes nothing more
      const r2 = await applyRetention(ledger, 1, { id: null, name: 'test' });
      assert.deepEqual(r2.deleted, []);
      assert.ok(r.protected.some((p) => p.id === m3 && p.reason === 'pinned'));
      assert.ok(r.protected.some((p) => p.id === m4 && p.reason === 'in_use'));
    } finally {
      ledger.close();
    }
  });

  test('catalog and settings through the API and the CLI', async () => {
    // list: newest first, with the fields the UI shows
    const list = (await (await api('/api/phpborg-backup/list')).json()) as { items: Record<string, unknown>[]; total: number };
    assert.ok(list.total >= 3);
    const dates = list.items.map((b) => String(b.created_at));
    assert.deepEqual(dates, [...dates].sort().reverse());
    for (const k of ['size_human', 'type', 'version', 'encrypted', 'status']) assert.ok(k in list.items[0], k);
    const ok = list.items.filter((b) => b.status === 'succeeded');
    const newest = ok[0];

    const stats = (await (await api('/api/phpborg-backup/stats')).json()) as { total: number; by_type: Record<string, number>; encrypted: number; last_success: { id: number } };
    assert.equal(stats.total, ok.length);
    assert.equal(stats.last_success.id, newest.id);
    assert.ok(stats.encrypted >= 1);

    const one = (await (await api(`/api/phpborg-backup/${newest.id}`)).json()) as Record<string, unknown>;
    assert.equal(one.filename, newest.filename);
    assert.equal((await api('/api/phpborg-backup/999999')).status, 404);

    // download: header auth, and a short-lived token in the URL
    const file = String(newest.filepath);
    const dl = await api(`/api/phpborg-backup/${newest.id}/download`);
    assert.equal(dl.status, 200);
    assert.equal(dl.headers.get('content-length'), String(lstatSync(file).size));
    assert.match(dl.headers.get('content-disposition')!, new RegExp(`attachment; filename="${String(newest.filename).replace(/\./g, '\\.')}"`));
    assert.ok(Buffer.from(await dl.arrayBuffer()).equals(readFileSync(file)));
    assert.equal((await runner.request(`/api/phpborg-backup/${newest.id}/download`)).status, 401);
    const tk = (await (await api(`/api/phpborg-backup/${newest.id}/download-token`, { method: 'POST' })).json()) as { token: string; url: string };
    const viaToken = await runner.request(tk.url);
    assert.equal(viaToken.status, 200);
    assert.ok(Buffer.from(await viaToken.arrayBuffer()).equals(readFileSync(file)));
    assert.equal((await runner.request(`/api/phpborg-backup/${ok[1].id}/download?token=${tk.token}`)).status, 401, 'a token opens one file only');
    assert.equal((await runner.request(`/api/phpborg-backup/${newest.id}/download?token=nope`)).status, 401);
    const row = runner.ledger.prepare('SELECT token_hash FROM download_tokens').all() as { token_hash: string }[];
    assert.ok(row.every((r) => r.token_hash !== tk.token), 'tokens are stored hashed');
    const dlAudit = runner.ledger
      .prepare("SELECT actor_name FROM audit_log WHERE action = 'backup.download' ORDER BY id DESC LIMIT 1")
      .get() as { actor_name: string };
    assert.notEqual(dlAudit.actor_name, 'download-token', 'a link download is audited as the admin who asked for the link');
    const viaHeader = runner.ledger.prepare("SELECT actor_name FROM audit_log WHERE action = 'backup.download' ORDER BY id ASC LIMIT 1").get() as { actor_name: string };
    assert.equal(dlAudit.actor_name, viaHeader.actor_name);

    // settings: the passphrase is write-only; a wrong value → 422 naming the key, nothing changed
    const s = (await (await api('/api/phpborg-backup/settings')).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(s.backup_encryption_passphrase as object).sort(), ['fingerprint', 'set']);
    assert.ok(!JSON.stringify(s).includes(PASSPHRASE));
    const bad = await api('/api/phpborg-backup/settings', { method: 'PUT', body: JSON.stringify({ backup_retention_count: 99, backup_notify_email: true }) });
    assert.equal(bad.status, 422);
    const be = (await bad.json()) as { error: { code: string; message: string; key: string } };
    assert.equal(be.error.key, 'backup_retention_count');
    assert.match(be.error.message, /backup_retention_count/);
    assert.equal(((await (await api('/api/phpborg-backup/settings')).json()) as Record<string, unknown>).backup_notify_email, s.backup_notify_email);
    const badDay = await api('/api/phpborg-backup/settings', { method: 'PUT', body: JSON.stringify({ backup_scheduled_day: 'caturday' }) });
    assert.equal(((await badDay.json()) as { error: { key: string } }).error.key, 'backup_scheduled_day');
    const put = await api('/api/phpborg-backup/settings', { method: 'PUT', body: JSON.stringify({ backup_retention_count: 7, backup_scheduled_time: '03:30' }) });
    assert.equal(put.status, 200, await put.clone().text());
    assert.equal(((await put.json()) as Record<string, unknown>).backup_retention_count, 7);

    // delete: pinned → 409; otherwise file, sidecars and row go
    const victim = ok.at(-1)!;
    setPinned(runner.ledger, Number(victim.id), true);
    const refused = await api(`/api/phpborg-backup/${victim.id}`, { method: 'DELETE' });
    assert.equal(refused.status, 409);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'pinned');
    assert.ok(existsSync(String(victim.filepath)));
    setPinned(runner.ledger, Number(victim.id), false);
    const del = await api(`/api/phpborg-backup/${victim.id}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    for (const f of [String(victim.filepath), `${victim.filepath}.sha256`, `${victim.filepath}.json`]) assert.ok(!existsSync(f), `${f} deleted`);
    assert.equal(getBackup(runner.ledger, Number(victim.id)), null);

    // the CLI shows the same data (independent commands side by side: each is a process)
    const [cl, cs, cst, cg, cbad, cpass] = await Promise.all([
      keeper(['backup', 'list', '--json']),
      keeper(['backup', 'show', String(newest.id), '--json']),
      keeper(['backup', 'stats', '--json']),
      keeper(['settings', 'get', 'backup_retention_count', '--json']),
      keeper(['settings', 'set', 'backup_retention_count', '0', '--json']),
      keeper(['settings', 'set', 'backup_encryption_passphrase', 'whatever1', '--json']),
    ]);
    assert.equal(cl.code, 0, cl.stderr);
    assert.deepEqual((lastJson(cl.stdout).items as { id: number }[]).map((b) => b.id), listBackups(runner.ledger).map((b) => b.id));
    assert.equal(lastJson(cs.stdout).hash_sha256, newest.hash_sha256);
    assert.equal(lastJson(cst.stdout).total, ok.length - 1);
    assert.equal(lastJson(cg.stdout).value, 7);
    assert.notEqual(cbad.code, 0);
    assert.match(String((lastJson(cbad.stdout).error as { message: string }).message), /backup_retention_count/);
    // the refusal is audited like the API's: settings.update / rejected, the key as target
    const refusal = listAudit(runner.ledger, { action: 'settings.update' }).items.find(
      (e) => e.outcome === 'rejected' && e.target === 'backup_retention_count' && e.actor.name.startsWith('cli:'),
    );
    assert.ok(refusal, JSON.stringify(listAudit(runner.ledger, { action: 'settings.update' }).items));
    assert.match(String((refusal.details as { error: string }).error), /backup_retention_count/);
    assert.ok(!JSON.stringify(listAudit(runner.ledger).items).includes('whatever1'), 'no passphrase in the audit log');
    assert.notEqual(cpass.code, 0, 'the passphrase is refused on the command line');
    const [cset, cdel] = await Promise.all([
      keeper(['settings', 'set', 'backup_retention_count', '4']),
      keeper(['backup', 'delete', String(ok.at(-2)!.id), '--yes', '--json']),
    ]);
    assert.equal(cset.code, 0, cset.stderr);
    assert.match(cset.stdout, /backup_retention_count\s+4/);
    assert.equal(cdel.code, 0, cdel.stderr);
    assert.equal(getBackup(runner.ledger, Number(ok.at(-2)!.id)), null);
  });
});
