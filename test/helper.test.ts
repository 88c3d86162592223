// The single-use helper: parameters stay off argv and the environment, a killed helper or one that
// prints garbage fails its job with a clear error, invalid parameters are refused by the helper.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { Runner } from '../runtime/runner.ts';
import { createRunner } from '../scripts/runner.ts';
import { helperCommand, PROJECT_ROOT } from '../runtime/helper/spawn.ts';
import { assertRootOnly, elevatedFrom } from '../runtime/helper/trust.ts';
import { HELPER_NICE } from '../runtime/helper/run.ts';
import { handOverStorage, sudoCaller } from '../runtime/helper/handover.ts';
import { getJob, getJobLog, listEvents, lockHolder } from '../state/jobs.ts';
import { getTask } from '../functions/tasks.ts';
import { makeTempInstall, type TempInstall } from './support/runner.ts';

process.env.KEEPER_TEST_TASKS = '1';
const actor = { id: 7, name: 'tester' };
let t: TempInstall;
let runner: Runner;

before(async () => {
  t = makeTempInstall();
  runner = await createRunner(t.config, t.configPath, { services: false, log: () => {} });
});
after(async () => {
  await runner?.close();
  t?.cleanup();
});

function start(task: string, params: unknown): string {
  const r = runner.jobs.start(task, params, actor);
  assert.ok(r.ok, `expected ${task} to start`);
  return r.jobId;
}

async function runningPid(id: string): Promise<number> {
  for (let i = 0; i < 300; i++) {
    const j = getJob(runner.ledger, id)!;
    // wait for the first progress event: by then the helper has read its request
    if (j.helper_pid && listEvents(runner.ledger, id).length > 0) return j.helper_pid;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${id} never got going`);
}

describe('helper', () => {
  test('parameters never appear in the helper\'s argv or environment, nor in the job row', async () => {
    const secret = `s3cret-${Math.random().toString(36).slice(2)}`;
    const id = start('test.ticks', { ms: 3000, steps: 30, secret });
    const pid = await runningPid(id);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    assert.ok(!cmdline.includes(secret), 'secret in cmdline');
    assert.ok(!environ.includes(secret), 'secret in environ');
    assert.ok(!cmdline.includes('ms'), 'params in cmdline');
    // /usr/bin/env has exec'd node by now: the command line ends in node and the bundle
    assert.deepEqual(cmdline.split('\0').filter(Boolean), helperCommand(t.config).slice(-2));
    // the environment is PATH/locale only (plus the test switch and the malloc tuning its command line sets)
    const keys = environ.split('\0').filter(Boolean).map((kv) => kv.split('=')[0]);
    for (const k of keys) assert.ok(['PATH', 'LANG', 'LC_ALL', 'TZ', 'HOME', 'USER', 'TMPDIR', 'KEEPER_TEST_TASKS', 'MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_'].includes(k), `unexpected env ${k}`);
    assert.match(environ, /(^|\0)MALLOC_ARENA_MAX=1\0/);
    assert.match(environ, /(^|\0)MALLOC_MMAP_THRESHOLD_=131072\0/);
    const job = await runner.jobs.wait(id, 20_000);
    assert.equal(job.status, 'succeeded');
    assert.deepEqual(job.params, { ms: 3000, steps: 30, secret: '[redacted]' });
    const everything = JSON.stringify(job) + getJobLog(runner.ledger, id) + JSON.stringify(listEvents(runner.ledger, id));
    assert.ok(!everything.includes(secret), 'secret stored in the ledger');
  });

  test('the helper runs below the runner\'s CPU priority, every thread of it', async () => {
    const id = start('test.ticks', { ms: 1500, steps: 15 });
    const pid = await runningPid(id);
    const nice = (stat: string) => Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]); // field 19
    const threads = readdirSync(`/proc/${pid}/task`);
    assert.ok(threads.length > 1);
    for (const tid of threads) assert.ok(nice(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')) >= HELPER_NICE, `thread ${tid}`);
    assert.equal(nice(readFileSync('/proc/self/stat', 'utf8')), getPriority());
    assert.ok(getPriority() < HELPER_NICE, 'the runner keeps its own priority');
    assert.equal((await runner.jobs.wait(id, 20_000)).status, 'succeeded');
  });

  test('the helper received the parameters (on stdin)', async () => {
    const id = start('test.echo', { secret: 'x', value: { a: [1, 2] } });
    const job = await runner.jobs.wait(id, 20_000);
    assert.equal(job.status, 'succeeded');
    const r = job.result as { has_secret: boolean; value: unknown; argv: string[] };
    assert.equal(r.has_secret, true);
    assert.deepEqual(r.value, { a: [1, 2] });
    assert.ok(!r.argv.join(' ').includes('{'), 'no JSON on the command line');
  });

  test('a helper killed with SIGKILL fails its job with the reason and frees the lock', async () => {
    const id = start('test.sleep', { ms: 20_000, steps: 200 });
    const pid = await runningPid(id);
    assert.equal(lockHolder(runner.ledger), id);
    process.kill(pid, 'SIGKILL');
    const job = await runner.jobs.wait(id, 10_000);
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, 'helper_crashed');
    assert.match(job.error!.message, /killed by SIGKILL/);
    assert.equal(lockHolder(runner.ledger), null);
    const last = listEvents(runner.ledger, id).at(-1)!;
    assert.equal(last.type, 'error');
  });

  test('a helper that prints garbage is stopped and fails its job with a clear error', async () => {
    const id = start('test.garbage', {});
    const job = await runner.jobs.wait(id, 10_000);
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, 'helper_protocol');
    assert.match(job.error!.message, /not JSON.*this is not JSON at all/);
    // killed, not left sleeping for 5 s
    assert.ok(Date.parse(job.finished_at!) - Date.parse(job.started_at!) < 4000);
    assert.throws(() => process.kill(job.helper_pid!, 0));
  });

  test('progress is throttled within a step (the latest wins), never across steps', async () => {
    const id = start('test.ticks', { ms: 600, steps: 120 });
    const job = await runner.jobs.wait(id, 20_000);
    assert.equal(job.status, 'succeeded');
    const ticks = listEvents(runner.ledger, id).filter((e) => e.type === 'progress');
    assert.ok(ticks.length >= 2 && ticks.length <= 12, `${ticks.length} progress events`);
    assert.equal(ticks.at(-1)!.percent, 100);
    assert.equal(job.percent, 100);
  });

  test('the helper validates parameters with the task schema', async () => {
    const id = start('test.sleep', { ms: 'soon' });
    const job = await runner.jobs.wait(id, 10_000);
    assert.equal(job.status, 'failed');
    assert.equal(job.error?.code, 'invalid_params');
    assert.match(job.error!.message, /ms/);
  });

  test('a TaskError keeps its code, step and details; a task can end rolled_back', async () => {
    const f = await runner.jobs.wait(start('test.fail', {}), 10_000);
    assert.equal(f.status, 'failed');
    assert.deepEqual(f.error, { code: 'test_failure', message: 'the test task failed on purpose', step: 'test.before_failure', details: { hint: 'none' } });
    const r = await runner.jobs.wait(start('test.rollback', {}), 10_000);
    assert.equal(r.status, 'rolled_back');
    assert.deepEqual(r.result, { rolled_back_to: 'nothing' });
  });

  test('the helper refuses a malformed request on stdin', () => {
    const [cmd, ...args] = helperCommand(t.config);
    const r = spawnSync(cmd, args, { cwd: PROJECT_ROOT, input: '{"task":"x"', env: { PATH: process.env.PATH }, encoding: 'utf8' });
    assert.equal(r.status, 1);
    const ev = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { type: string; code: string };
    assert.equal(ev.type, 'error');
    assert.equal(ev.code, 'bad_request');
  });

  test('elevated by another user, the helper trusts only a configuration root alone can change', { skip: process.getuid?.() !== 0 && 'needs root' }, () => {
    assert.equal(elevatedFrom({ SUDO_UID: '1000' }, 0), 'SUDO_UID=1000');
    assert.equal(elevatedFrom({ SUDO_UID: '0' }, 0), null);
    assert.equal(elevatedFrom({}, 0), null);
    assert.equal(elevatedFrom({ SUDO_UID: '1000' }, 1000), null);
    const dir = mkdtempSync(join(tmpdir(), 'keeper-trust-'));
    try {
      const cfg = join(dir, 'keeper.json');
      copyFileSync(t.configPath, cfg);
      chmodSync(cfg, 0o644);
      assert.doesNotThrow(() => assertRootOnly(cfg));
      const [cmd, ...args] = helperCommand(t.config);
      const ask = () => {
        const req = { task: 'test.echo', params: {}, job_id: 'trust-test', config_path: cfg, actor: { id: null, name: 't' } };
        const r = spawnSync(cmd, args, { cwd: PROJECT_ROOT, input: JSON.stringify(req), env: { PATH: process.env.PATH, SUDO_UID: '1000', KEEPER_TEST_TASKS: '1' }, encoding: 'utf8' });
        return { status: r.status, ev: JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { type: string; code?: string; message?: string } };
      };
      chmodSync(dir, 0o777); // anyone could swap the file: refused
      let r = ask();
      assert.equal(r.status, 1);
      assert.equal(r.ev.code, 'config_untrusted');
      assert.match(r.ev.message!, /writable by group or others.*chmod go-w/);
      chmodSync(dir, 0o700);
      chownSync(cfg, 65534, 65534); // another user's file: refused
      r = ask();
      assert.equal(r.ev.code, 'config_untrusted');
      assert.match(r.ev.message!, /not root.*chown root/);
      chownSync(cfg, 0, 0);
      r = ask(); // root's alone: the request is served
      assert.equal(r.ev.type, 'result', JSON.stringify(r.ev));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('elevated by sudo, the helper hands the storage dir and its archives to the runner\'s user', { skip: process.getuid?.() !== 0 && 'needs root' }, () => {
    assert.equal(sudoCaller({}, 0), null, 'not elevated: nothing to hand over');
    assert.equal(sudoCaller({ SUDO_UID: '1000', SUDO_GID: '1000' }, 1000), null, 'not root: nothing to hand over');
    const caller = sudoCaller({ SUDO_UID: '65534', SUDO_GID: '65533' }, 0);
    assert.deepEqual(caller, { uid: 65534, gid: 65533 });
    const dir = mkdtempSync(join(tmpdir(), 'keeper-handover-'));
    try {
      const storage = join(dir, 'storage');
      mkdirSync(storage, { mode: 0o700 });
      writeFileSync(join(storage, 'a.tar.gz'), 'x', { mode: 0o600 });
      writeFileSync(join(storage, 'a.tar.gz.json'), '{}', { mode: 0o600 });
      mkdirSync(join(storage, 'sub'));
      writeFileSync(join(dir, 'outside'), 'root keeps this');
      symlinkSync(join(dir, 'outside'), join(storage, 'link'));
      assert.equal(handOverStorage(storage, caller), 3);
      for (const f of ['', 'a.tar.gz', 'a.tar.gz.json']) {
        const st = statSync(join(storage, f));
        assert.deepEqual([st.uid, st.gid], [65534, 65533], f || 'storage dir');
      }
      assert.equal(statSync(join(storage, 'a.tar.gz')).mode & 0o777, 0o600, 'modes unchanged');
      assert.equal(statSync(join(storage, 'sub')).uid, 0, 'only the files directly in the dir');
      assert.equal(statSync(join(dir, 'outside')).uid, 0, 'a link is never followed');
      assert.equal(handOverStorage(storage, caller), 0, 'idempotent');
      assert.equal(handOverStorage(join(dir, 'missing'), caller), 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('test tasks do not exist without KEEPER_TEST_TASKS=1', () => {
    delete process.env.KEEPER_TEST_TASKS;
    try {
      assert.equal(getTask('test.sleep'), undefined);
      assert.ok(getTask('system.services'));
    } finally {
      process.env.KEEPER_TEST_TASKS = '1';
    }
  });
});
