// Crash tests of the update, the manual rollback and the emergency restore: the process doing the
// work is SIGKILLed at every step key, then the install is exactly as before or exactly as after
// (HEAD, every file's hash and mode, the schema, CHECKSUM TABLE of every table), the units run, no
// plain-text temporary is left, the ledger, the job and the update history tell the truth, and the
// next operation succeeds. The rows feed the README's fault table.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRunner } from '../scripts/runner.ts';
import type { Runner } from '../runtime/runner.ts';
import { runOk, safeEnv } from '../runtime/exec.ts';
import { listJobs, type JobView } from '../state/jobs.ts';
import { listUpdates } from '../state/updates.ts';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import { apiRequest, installSnapshot, keeperCli, lastJson, passphraseFile, patchConfig, scriptPath, spawnOut, unitsActive } from './support/install.ts';
import { assertClean, faultEnv, finished, killedAt, writeFaultTable, type FaultRow } from './support/faults.ts';

let sb: Sandbox;
let runner: Runner;
let token: string;
let work: string;

before(async () => {
  sb = await startSandbox();
  patchConfig(sb, { health_timeout_s: 4 });
  runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
  token = await sb.token();
  work = mkdtempSync(join(tmpdir(), 'keeper-faults-'));
});
after(async () => {
  await runner?.close().catch(() => {});
  await sb?.down();
  if (work) rmSync(work, { recursive: true, force: true });
});

const api = (path: string, init: RequestInit = {}) => apiRequest(runner, token, path, init);
const post = (path: string, body: unknown) => api(path, { method: 'POST', body: JSON.stringify(body) });
const git = (args: string[]) => runOk('git', ['-C', sb.config.paths.code, ...args], { env: safeEnv({ GIT_CONFIG_NOSYSTEM: '1' }) }).then((s) => s.trim());

/** What a user compares: HEAD, code, config, keys, schema and every table. */
async function snapshot() {
  const columns = await sb.query('SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION');
  return { head: await git(['rev-parse', 'HEAD']), ...(await installSnapshot(sb)), columns };
}
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const rx = (step: string) => step.replace(/\./g, '\\.');

const BACKUP_KEYS = (prefix: string, retention: boolean) =>
  ['precheck', 'drain', 'stop_units', 'dump', 'start_units', 'archive', 'finalize', ...(retention ? ['retention'] : []), 'done'].map((k) => `${prefix}.${k}`);

const UPDATE_STEPS = [
  'update.precheck',
  'update.fetch',
  'update.backup',
  ...BACKUP_KEYS('update.backup', true),
  'update.stop_units',
  'update.record',
  'update.fast_forward',
  'update.dependencies',
  'update.system_dependencies',
  'update.migrations',
  'update.start_units',
  'update.health',
];

const RESTORE_KEYS = [
  'restore.verify',
  'restore.free_space',
  'restore.extract',
  'restore.safety_backup',
  ...BACKUP_KEYS('restore.safety_backup', false),
  'restore.stop_units',
  'restore.database',
  'restore.code',
  'restore.config',
  'restore.start_units',
  'restore.health',
];

/** Checks one crash: before or after, units, leftovers, the job; returns the table row. */
async function judge(operation: string, step: string, j: JobView, beforeSnap: unknown, afterSnap: unknown): Promise<FaultRow> {
  const now = await snapshot();
  const outcome: FaultRow['outcome'] | null = same(now, beforeSnap) ? 'before' : same(now, afterSnap) ? 'after' : null;
  assert.ok(outcome, `${operation} killed at ${step}: the install is exactly before or after, not mixed (job ${j.status}: ${JSON.stringify(j.error ?? j.result).slice(0, 2000)})`);
  if (j.status === 'failed') assert.match(j.error!.message, /nothing was changed/, `${step}: ${JSON.stringify(j.error)}`);
  else {
    assert.equal(j.status, 'rolled_back', `${step}: ${JSON.stringify(j.error)}`);
    assert.match((j.result as { message: string }).message, new RegExp(`interrupted at ${rx(step)}|interrupted at ${rx(step.split('.').slice(0, 2).join('.'))}`));
  }
  await unitsActive(sb);
  assertClean(sb, runner.ledger);
  return { operation, step, outcome, job: j.status };
}

let beforeUpdate: Awaited<ReturnType<typeof snapshot>>;
let updated: Awaited<ReturnType<typeof snapshot>>;
let updateId: number;

test('update: killed at every step → the install exactly as before, history closed truthfully; the next update succeeds', async () => {
  beforeUpdate = await snapshot();
  const rows: FaultRow[] = [];
  for (const step of UPDATE_STEPS) {
    const j = await killedAt(runner, step, () => post('/api/phpborg-update/apply', {}));
    rows.push(await judge('update', step, j, beforeUpdate, null));
    // the history row, when the update got that far, says how it ended
    const row = listUpdates(runner.ledger, { limit: 1 }).items.find((u) => u.job_id === j.id);
    if (row) assert.equal(row.status, j.status === 'rolled_back' ? 'rolled_back' : 'failed', step);
  }
  const ok = await finished(runner, post('/api/phpborg-update/apply', {}));
  assert.equal(ok.status, 'succeeded', JSON.stringify(ok.error));
  updateId = (ok.result as { history_id: number }).history_id;
  updated = await snapshot();
  assert.notEqual(updated.head, beforeUpdate.head);
  writeFaultTable('update', rows);
});

test('manual rollback: killed at every step → the install exactly as before (updated) or after; the next rollback succeeds', async () => {
  const rows: FaultRow[] = [];
  for (const step of ['update.rollback', ...RESTORE_KEYS]) {
    const j = await killedAt(runner, step, () => post(`/api/phpborg-update/rollback/${updateId}`, { confirm: true }));
    rows.push(await judge('rollback', step, j, updated, beforeUpdate));
    const row = listUpdates(runner.ledger, { limit: 5 }).items.find((u) => u.job_id === j.id);
    if (row) {
      assert.equal(row.kind, 'rollback');
      assert.notEqual(row.status, 'running', `${step}: the rollback's history row is closed`);
    }
  }
  const ok = await finished(runner, post(`/api/phpborg-update/rollback/${updateId}`, { confirm: true }));
  assert.equal(ok.status, 'succeeded', JSON.stringify(ok.error));
  assert.equal((await snapshot()).head, beforeUpdate.head);
  writeFaultTable('rollback', rows);
});

test('emergency restore: the script killed at every step → recovered by the runner, exactly before or after; the next emergency restore succeeds', async () => {
  // encrypted, as on a real install: the safety copy and its recovery need the stored passphrase
  const pass = passphraseFile(join(work, 'pass'), 'fault test passphrase');
  let r = await keeperCli(sb, ['settings', 'set-passphrase', '--passphrase-file', pass, '--enable', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  r = await keeperCli(sb, ['backup', 'create', '--json']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const backupId = (lastJson(r.stdout) as { id: number }).id;
  const atBackup = await snapshot();
  await sb.query("INSERT INTO servers (name, host) VALUES ('after-emergency-backup', 'x.example.lan')");
  const changed = await snapshot();
  const emergency = (env?: NodeJS.ProcessEnv) =>
    spawnOut(scriptPath('emergency-restore'), [String(backupId), '--yes', '--passphrase-file', pass, '--config', sb.info.config], { env });

  const rows: FaultRow[] = [];
  for (const step of RESTORE_KEYS.filter((k) => !k.startsWith('restore.safety_backup.'))) {
    const seen = new Set(listJobs(runner.ledger, { type: 'operation.recover', limit: 500 }).map((j) => j.id));
    const killed = await emergency(faultEnv(step));
    // scripts/emergency-restore is a shell wrapper: it reports its node process killed by SIGKILL as 137
    assert.equal(killed.code, 137, `${step}: the script was killed (${killed.stdout.slice(-500)})`);
    // the runner notices the dead process (its watch runs every few seconds) and recovers
    let job: JobView | undefined;
    for (let i = 0; i < 100 && !job; i++) {
      job = listJobs(runner.ledger, { type: 'operation.recover', limit: 500 }).find((j) => !seen.has(j.id));
      if (!job) await new Promise((res) => setTimeout(res, 100));
    }
    assert.ok(job, `${step}: a recovery job was started`);
    const j = await runner.jobs.wait(job.id, 120_000);
    rows.push(await judge('emergency', step, j, changed, atBackup));
  }
  const ok = await emergency();
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.ok(same((await snapshot()).tables, atBackup.tables));
  writeFaultTable('emergency', rows);
});
