// Crash tests of backup and restore: the helper is SIGKILLed at every step key, then the install is
// exactly as before or exactly as after (every file's hash and mode, CHECKSUM TABLE of every table),
// the units run, no plain-text temporary is left anywhere, the ledger and the job tell the truth, and
// the next operation succeeds. The rows feed the README's fault table.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRunner } from '../scripts/runner.ts';
import type { Runner } from '../runtime/runner.ts';
import { getBackup, listBackups } from '../state/catalog.ts';
import { updateSettings } from '../state/settings.ts';
import { getJob, listEvents, pidAlive } from '../state/jobs.ts';
import { PROJECT_ROOT } from '../runtime/helper/spawn.ts';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import { apiRequest, installSnapshot, patchConfig, unitsActive } from './support/install.ts';
import { assertClean, finished, killedAt, writeFaultTable, type FaultRow } from './support/faults.ts';

let sb: Sandbox;
let runner: Runner;
let token: string;

before(async () => {
  sb = await startSandbox();
  // an off-site target (rclone's local backend) so that the backup's off-site step is killed too
  const rclone = join(sb.dir, 'rclone.conf');
  writeFileSync(rclone, '[loc]\ntype = local\n', { mode: 0o600 });
  patchConfig(sb, { health_timeout_s: 4, offsite: [{ name: 'loc', kind: 'rclone', remote: `loc:${join(sb.dir, 'offsite')}`, config_file: rclone }] });
  runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
  // phpBorg's migration 001 seeds a retention of 3: the backup restored again and again must stay
  updateSettings(runner.ledger, sb.config.paths.storage, { backup_retention_count: 10 });
  token = await sb.token();
});
after(async () => {
  await runner?.close().catch(() => {});
  await sb?.down();
});

const api = (path: string, init: RequestInit = {}) => apiRequest(runner, token, path, init);
const post = (path: string, body: unknown) => api(path, { method: 'POST', body: JSON.stringify(body) });

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

const BACKUP_STEPS = [
  'backup.precheck',
  'backup.drain',
  'backup.stop_units',
  'backup.dump',
  'backup.start_units',
  'backup.archive',
  'backup.finalize',
  'backup.retention',
  'backup.offsite',
  'backup.done',
];

// the safety backup's own steps are steps of the restore job too
const RESTORE_STEPS = [
  'restore.verify',
  'restore.free_space',
  'restore.extract',
  'restore.safety_backup',
  'restore.safety_backup.precheck',
  'restore.safety_backup.drain',
  'restore.safety_backup.stop_units',
  'restore.safety_backup.dump',
  'restore.safety_backup.start_units',
  'restore.safety_backup.archive',
  'restore.safety_backup.finalize',
  'restore.safety_backup.done',
  'restore.stop_units',
  'restore.database',
  'restore.code',
  'restore.config',
  'restore.start_units',
  'restore.health',
];

let first: number;
let atBackup: Awaited<ReturnType<typeof installSnapshot>>;
let changed: Awaited<ReturnType<typeof installSnapshot>>;

test('the state to restore, and a changed install', async () => {
  const j = await finished(runner, post('/api/phpborg-backup/create', { notes: 'fault tests' }));
  assert.equal(j.status, 'succeeded', JSON.stringify(j.error));
  first = (j.result as { id: number }).id;
  atBackup = await installSnapshot(sb);
  const c = sb.config;
  await sb.query("INSERT INTO servers (name, host) VALUES ('after-backup', 'after.example.lan')");
  appendFileSync(join(c.paths.code, '.env'), 'FAULT_TEST_KEY=1\n');
  appendFileSync(join(c.paths.code, 'composer.json'), '\n');
  unlinkSync(join(c.paths.ssh, 'id_ed25519.pub'));
  changed = await installSnapshot(sb);
  assert.ok(!same(changed, atBackup));
});

test('backup: killed at every step → no archive or a complete one, units running, nothing left, next backup succeeds', async () => {
  const rows: FaultRow[] = [];
  for (const step of BACKUP_STEPS) {
    const before = listBackups(runner.ledger).filter((b) => b.status === 'succeeded').length;
    const j = await killedAt(runner, step, () => post('/api/phpborg-backup/create', {}));
    assert.equal(j.status, 'failed', `${step}: ${JSON.stringify(j.error)}`);
    assert.match(j.error!.message, /nothing was changed/, step);
    // the archive is either absent (its row failed, no file) or complete and intact
    const row = listBackups(runner.ledger).find((b) => b.job_id === j.id);
    let outcome: FaultRow['outcome'] = 'before';
    if (row?.status === 'succeeded') {
      const b = getBackup(runner.ledger, row.id)!;
      assert.equal(sha(b.filepath), b.hash_sha256, `${step}: the archive kept is intact`);
      outcome = 'after';
    } else {
      if (row) assert.equal(row.status, 'failed', step);
      assert.ok(!row || !existsSync(row.filepath), `${step}: no file under the final name`);
      assert.equal(listBackups(runner.ledger).filter((b) => b.status === 'succeeded').length, before, step);
    }
    assert.ok(same(await installSnapshot(sb), changed), `${step}: the install is untouched`);
    await unitsActive(sb);
    assertClean(sb, runner.ledger);
    rows.push({ operation: 'backup', step, outcome, job: j.status });
  }
  const next = await finished(runner, post('/api/phpborg-backup/create', {}));
  assert.equal(next.status, 'succeeded', JSON.stringify(next.error));
  writeFaultTable('backup', rows);
});

test('restore: killed at every step → the install exactly as before (or after), units running, nothing left; the next restore succeeds', async () => {
  const rows: FaultRow[] = [];
  // a dir an archive never holds (node_modules): a rollback puts it back from the tree moved aside
  const marker = join(sb.config.paths.code, 'frontend', 'node_modules', '.keeper-fault-marker');
  mkdirSync(dirname(marker), { recursive: true });
  writeFileSync(marker, 'installed\n');
  for (const step of RESTORE_STEPS) {
    const j = await killedAt(runner, step, () => post(`/api/phpborg-backup/${first}/restore`, { confirm: true }));
    const now = await installSnapshot(sb);
    const outcome: FaultRow['outcome'] | null = same(now, changed) ? 'before' : same(now, atBackup) ? 'after' : null;
    assert.ok(outcome, `${step}: the install is exactly before or after, not mixed (job ${j.status}: ${JSON.stringify(j.error ?? j.result)})`);
    if (j.status === 'failed') {
      assert.equal(j.error?.code, 'interrupted', step);
      assert.match(j.error!.message, /nothing was changed/, step);
    } else {
      assert.equal(j.status, 'rolled_back', `${step}: ${JSON.stringify(j.error)}`);
      assert.match((j.result as { message: string }).message, new RegExp(`interrupted at ${step.replace(/\./g, '\\.')}.*rolled back to .*pre_restore`));
    }
    await unitsActive(sb);
    assertClean(sb, runner.ledger);
    assert.ok(existsSync(marker), `${step}: the excluded dirs of the install are still there`);
    rows.push({ operation: 'restore', step, outcome, job: j.status });
  }
  const next = await finished(runner, post(`/api/phpborg-backup/${first}/restore`, { confirm: true }));
  assert.equal(next.status, 'succeeded', JSON.stringify(next.error));
  assert.ok(same(await installSnapshot(sb), atBackup), 'the restore after the crashes is byte- and row-exact');
  writeFaultTable('restore', rows);
});

/** The runner as its own process (`npm start` with a configuration), listening on a free port. */
async function runnerProcess(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'scripts', 'runner.ts'), '--config', sb.info.config], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, KEEPER_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`the runner exited (${code}) before listening: ${out}`)));
  });
  return { url, child };
}

/** Waits until the job has reported `step` (read from the ledger: the job belongs to another process). */
async function reached(jobId: string, step: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (listEvents(runner.ledger, jobId).some((e) => e.step === step)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`job ${jobId} never reached ${step}`);
}

test('the runner killed during a restore: the helper finishes alone and is not recovered twice; a helper that dies later is recovered by the next runner', async () => {
  await runner.close();
  const recoveries = () => listEvents(runner.ledger, jobId).filter((e) => /recovering the install/.test(e.message ?? '')).length;
  let jobId = '';

  // 1. the runner dies at the database step; its helper goes on alone and records the outcome itself
  let r = await runnerProcess();
  let res = await fetch(`${r.url}/api/phpborg-backup/${first}/restore`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"confirm":true}' });
  assert.equal(res.status, 202, await res.clone().text());
  jobId = ((await res.json()) as { job_id: string }).job_id;
  runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
  await reached(jobId, 'restore.database');
  r.child.kill('SIGKILL');
  const helper = getJob(runner.ledger, jobId)!.helper_pid!;
  assert.ok(pidAlive(helper), 'the helper outlives its runner');
  await runner.close();
  runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
  const done = await runner.jobs.wait(jobId, 120_000);
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  assert.equal(recoveries(), 0, 'a live helper is never recovered');
  assert.ok(same(await installSnapshot(sb), atBackup));
  await unitsActive(sb);
  assertClean(sb, runner.ledger);

  // 2. the runner dies, then its helper too: the next runner recovers the job (rolled back)
  await sb.query("INSERT INTO servers (name, host) VALUES ('second-change', 'second.example.lan')");
  const changedAgain = await installSnapshot(sb);
  await runner.close();
  r = await runnerProcess();
  res = await fetch(`${r.url}/api/phpborg-backup/${first}/restore`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"confirm":true}' });
  jobId = ((await res.json()) as { job_id: string }).job_id;
  runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
  await reached(jobId, 'restore.code');
  r.child.kill('SIGKILL');
  process.kill(getJob(runner.ledger, jobId)!.helper_pid!, 'SIGKILL');
  await runner.close();
  runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
  const recovered = await runner.jobs.wait(jobId, 120_000);
  assert.equal(recovered.status, 'rolled_back', JSON.stringify(recovered.error));
  assert.equal(recoveries(), 1);
  assert.ok(same(await installSnapshot(sb), changedAgain), 'rolled back to exactly before the restore');
  await unitsActive(sb);
  assertClean(sb, runner.ledger);
});
