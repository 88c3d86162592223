// The runner: configuration errors, SSE replay/live/resume, the maintenance lock (API and CLI,
// across processes), recovery at start, graceful shutdown, and `npm start` with no config (demo).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { ConfigError, parseConfig } from '../runtime/config.ts';
import { startServer, type Runner, type Serving } from '../runtime/runner.ts';
import { createRunner } from '../scripts/runner.ts';
import { requireAdmin } from '../runtime/auth.ts';
import { jsonBody } from '../runtime/errors.ts';
import { startJob } from '../functions/jobs/start.ts';
import { createJob, getJob, lockHolder, markRunning } from '../state/jobs.ts';
import { ledgerPath, openLedger } from '../state/ledger.ts';
import { downSandbox } from '../scripts/sandbox-kit/index.ts';
import { PROJECT_ROOT } from '../runtime/helper/spawn.ts';
import { accessToken, makeTempInstall, type TempInstall } from './support/runner.ts';

process.env.KEEPER_TEST_TASKS = '1';
const KEEPER = join(PROJECT_ROOT, 'scripts', 'keeper');

let t: TempInstall;
let runner: Runner;
let serving: Serving;
let auth: { authorization: string };

before(async () => {
  t = makeTempInstall();
  runner = await createRunner(t.config, t.configPath, { services: false, log: () => {}, graceMs: 500 });
  // a maintenance route as backup/restore/update will have, on the real app
  const Body = v.object({ ms: v.optional(v.number()) });
  runner.app.post('/api/test/sleep', requireAdmin, async (c) => startJob(c, 'test.sleep', await jsonBody(c, Body)));
  serving = await startServer(runner, { port: 0 });
  auth = { authorization: `Bearer ${await accessToken(t.secret)}` };
});
after(async () => {
  await serving?.close();
  t?.cleanup();
});

interface SseEvent {
  id?: string;
  event: string;
  data: Record<string, unknown>;
  at: number;
}

/** Reads an SSE stream until `event: end` (or the stream closes). */
async function readSse(path: string, headers: Record<string, string> = {}): Promise<SseEvent[]> {
  const res = await fetch(serving.url + path, { headers: { ...auth, ...headers } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const out: SseEvent[] = [];
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev: Partial<SseEvent> = { event: 'message', at: Date.now() };
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('id:')) ev.id = line.slice(3).trim();
        else if (line.startsWith('event:')) ev.event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (!data.length) continue;
      ev.data = JSON.parse(data.join('\n')) as Record<string, unknown>;
      out.push(ev as SseEvent);
      if (ev.event === 'end') return out;
    }
  }
  return out;
}

describe('configuration', () => {
  test('each error names its field, the value and what is expected', () => {
    let err: ConfigError | undefined;
    try {
      parseConfig({ paths: { code: 'relative/dir' }, server: { port: 70000 }, helper_prefix: 'sudo -n', service_manager: [], surprise: 1 });
    } catch (e) {
      err = e as ConfigError;
    }
    assert.ok(err instanceof ConfigError);
    const text = err.issues.join('\n');
    assert.match(text, /paths\.code: got "relative\/dir"; expected an absolute path/);
    assert.match(text, /server\.port: got 70000/);
    assert.match(text, /helper_prefix: got "sudo -n"/);
    assert.match(text, /service_manager: got \[\]; expected at least the program name/);
    assert.match(text, /surprise/);
  });

  test('the runner refuses a bad configuration, exits non-zero and touches nothing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keeper-badcfg-'));
    try {
      const file = join(dir, 'keeper.json');
      writeFileSync(file, JSON.stringify({ paths: { state: join(dir, 'state'), storage: 'not/absolute' } }));
      const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/runner.ts', '--config', file], {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
        env: { PATH: process.env.PATH, KEEPER_PORT: '0' },
        timeout: 30_000,
      });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /paths\.storage: got "not\/absolute"; expected an absolute path/);
      assert.equal(existsSync(join(dir, 'state')), false);
      const j = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/runner.ts', '--config', join(dir, 'missing.json')], {
        cwd: PROJECT_ROOT, encoding: 'utf8', env: { PATH: process.env.PATH, KEEPER_PORT: '0' }, timeout: 30_000,
      });
      assert.notEqual(j.status, 0);
      assert.match(j.stderr, /cannot read configuration .*missing\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('job events (SSE)', () => {
  test('live: events arrive while the job runs, ids are the sequence, the stream ends with the job', async () => {
    const s = runner.jobs.start('test.ticks', { ms: 1500, steps: 5 }, { id: 1, name: 'admin' });
    assert.ok(s.ok);
    const events = await readSse(`/api/jobs/${s.jobId}/events`);
    const ticks = events.filter((e) => e.event === 'progress');
    assert.equal(ticks.length, 5);
    assert.deepEqual(ticks.map((e) => e.id), ['1', '2', '3', '4', '5']);
    assert.deepEqual(ticks.map((e) => e.data.percent), [20, 40, 60, 80, 100]);
    assert.equal(ticks[0].data.step, 'test.tick');
    assert.deepEqual(ticks[0].data.params, { i: 1, of: 5 });
    // live, not all at the end: the first tick came well before the last
    assert.ok(ticks[4].at - ticks[0].at > 500, 'events were not streamed live');
    const end = events.at(-1)!;
    assert.equal(end.event, 'end');
    assert.equal(end.data.status, 'succeeded');
    assert.equal(events.at(-2)!.event, 'result');
  });

  test('replay after the end, and Last-Event-ID resumes after that sequence', async () => {
    const s = runner.jobs.start('test.ticks', { ms: 1200, steps: 4 }, { id: 1, name: 'admin' });
    assert.ok(s.ok);
    await runner.jobs.wait(s.jobId, 10_000);
    const all = await readSse(`/api/jobs/${s.jobId}/events`);
    assert.deepEqual(all.map((e) => e.event), ['progress', 'progress', 'progress', 'progress', 'result', 'end']);
    const resumed = await readSse(`/api/jobs/${s.jobId}/events`, { 'last-event-id': '3' });
    assert.deepEqual(resumed.map((e) => e.id ?? e.event), ['4', '5', 'end']);
  });

  test('resume in the middle of a live job', async () => {
    const s = runner.jobs.start('test.ticks', { ms: 2000, steps: 4 }, { id: 1, name: 'admin' });
    assert.ok(s.ok);
    const resumed = await readSse(`/api/jobs/${s.jobId}/events`, { 'last-event-id': '2' });
    assert.deepEqual(resumed.map((e) => e.id ?? e.event), ['3', '4', '5', 'end']);
  });

  test('the events route is admin-only; a browser may pass ?access_token=', async () => {
    const s = runner.jobs.start('test.ticks', { ms: 10, steps: 1 }, { id: 1, name: 'admin' });
    assert.ok(s.ok);
    await runner.jobs.wait(s.jobId, 10_000);
    const res = await fetch(`${serving.url}/api/jobs/${s.jobId}/events`);
    assert.equal(res.status, 401);
    assert.deepEqual(Object.keys((await res.json()) as object), ['error']);
    const token = auth.authorization.slice('Bearer '.length);
    const ok = await fetch(`${serving.url}/api/jobs/${s.jobId}/events?access_token=${token}`);
    assert.equal(ok.status, 200);
    await ok.text();
    // but only there
    assert.equal((await fetch(`${serving.url}/api/jobs/${s.jobId}?access_token=${token}`)).status, 401);
  });

  test('GET /api/jobs/:id shows the job', async () => {
    const s = runner.jobs.start('test.ticks', { ms: 10, steps: 1 }, { id: 1, name: 'admin' });
    assert.ok(s.ok);
    await runner.jobs.wait(s.jobId, 10_000);
    const res = await fetch(`${serving.url}/api/jobs/${s.jobId}`, { headers: auth });
    const j = (await res.json()) as Record<string, unknown>;
    assert.equal(j.status, 'succeeded');
    assert.equal(j.type, 'test.ticks');
    assert.equal(j.percent, 100);
    assert.deepEqual(j.actor, { id: 1, name: 'admin' });
  });
});

describe('maintenance lock', () => {
  test('a second maintenance request gets 409 naming the running job', async () => {
    const post = (body: unknown) =>
      fetch(`${serving.url}/api/test/sleep`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const first = await post({ ms: 1500 });
    assert.equal(first.status, 202);
    const { job_id } = (await first.json()) as { job_id: string };
    const second = await post({ ms: 10 });
    assert.equal(second.status, 409);
    const body = (await second.json()) as { error: { code: string; message: string; job_id: string } };
    assert.equal(body.error.code, 'busy');
    assert.equal(body.error.job_id, job_id);
    assert.match(body.error.message, new RegExp(`job ${job_id} is running`));
    // invalid body → 422 naming the field, and nothing started
    const bad = await post({ ms: 'long' });
    assert.ok([409, 422].includes(bad.status));
    await runner.jobs.wait(job_id, 10_000);
    const invalid = await post({ ms: 'long' });
    assert.equal(invalid.status, 422);
    assert.match(((await invalid.json()) as { error: { message: string } }).error.message, /^ms:/);
    const third = await post({ ms: 10 });
    assert.equal(third.status, 202);
    await runner.jobs.wait(((await third.json()) as { job_id: string }).job_id, 10_000);
  });

  test('across processes: the CLI is refused while the runner holds the lock, and vice versa', async () => {
    const s = runner.jobs.start('test.sleep', { ms: 4000 }, { id: 1, name: 'admin' });
    assert.ok(s.ok);
    const env = { ...process.env, KEEPER_TEST_TASKS: '1' };
    const cli = spawnSync(KEEPER, ['--config', t.configPath, '--json', 'test', 'run', 'test.sleep', '--params', '{"ms":10}'], { encoding: 'utf8', env, timeout: 30_000 });
    assert.equal(cli.status, 1);
    const last = JSON.parse(cli.stdout.trim().split('\n').at(-1)!) as { error: { code: string; job_id: string } };
    assert.equal(last.error.code, 'busy');
    assert.equal(last.error.job_id, s.jobId);
    await runner.jobs.wait(s.jobId, 10_000);

    // now the CLI holds it
    const child = spawn(KEEPER, ['--config', t.configPath, '--json', 'test', 'run', 'test.sleep', '--params', '{"ms":3000}'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    let holder: string | null = null;
    for (let i = 0; i < 200 && !holder; i++) {
      holder = lockHolder(runner.ledger);
      if (!holder) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(holder, 'the CLI never took the lock');
    const res = await fetch(`${serving.url}/api/test/sleep`, { method: 'POST', headers: auth, body: '{}' });
    assert.equal(res.status, 409);
    assert.equal(((await res.json()) as { error: { job_id: string } }).error.job_id, holder);
    // the runner follows the CLI's job through the ledger
    const events = await readSse(`/api/jobs/${holder}/events`);
    assert.equal(events.at(-1)!.event, 'end');
    assert.equal(events.at(-1)!.data.status, 'succeeded');
    assert.equal(await exited, 0);
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as { job_id: string; status: string };
    assert.equal(result.job_id, holder);
    assert.equal(getJob(runner.ledger, holder)!.actor.name.startsWith('cli:'), true);
  });
});

describe('recovery and shutdown', () => {
  test('at start: a job whose helper died becomes interrupted and its lock is released', async () => {
    const x = makeTempInstall();
    try {
      const ledger = openLedger(ledgerPath(x.config.paths.state));
      const dead = spawnSync('true').pid!; // a pid that no longer exists
      const r = createJob(ledger, { type: 'test.sleep', params: {}, actor: { id: null, name: 'cli:root' }, lock: true });
      assert.ok(r.ok);
      markRunning(ledger, r.job.id, dead);
      ledger.close();
      const rr = await createRunner(x.config, x.configPath, { services: false, log: () => {} });
      try {
        const j = getJob(rr.ledger, r.job.id)!;
        assert.equal(j.status, 'interrupted');
        assert.equal(j.error?.code, 'interrupted');
        assert.equal(lockHolder(rr.ledger), null);
      } finally {
        await rr.close();
      }
    } finally {
      x.cleanup();
    }
  });

  test('shutdown waits for running helpers (bounded), then marks their jobs interrupted', async () => {
    const x = makeTempInstall();
    try {
      const rr = await createRunner(x.config, x.configPath, { services: false, log: () => {}, graceMs: 5000 });
      const quick = rr.jobs.start('test.ticks', { ms: 800, steps: 2 }, { id: null, name: 't' });
      assert.ok(quick.ok);
      await rr.close();
      assert.equal(getJob(openLedger(ledgerPath(x.config.paths.state)), quick.jobId)!.status, 'succeeded');

      const r2 = await createRunner(x.config, x.configPath, { services: false, log: () => {}, graceMs: 300 });
      const slow = r2.jobs.start('test.sleep', { ms: 3000, steps: 3 }, { id: null, name: 't' });
      assert.ok(slow.ok);
      await r2.close();
      const l = openLedger(ledgerPath(x.config.paths.state));
      try {
        assert.equal(getJob(l, slow.jobId)!.status, 'interrupted');
        assert.equal(lockHolder(l), slow.jobId, 'the orphaned helper still holds the maintenance lock');
        // the helper was left to finish on its own and records its real outcome itself
        for (let i = 0; i < 100 && getJob(l, slow.jobId)!.status === 'interrupted'; i++) await new Promise((r) => setTimeout(r, 100));
        const j = getJob(l, slow.jobId)!;
        assert.equal(j.status, 'succeeded');
        assert.equal(j.percent, 100);
        assert.equal(lockHolder(l), null);
      } finally {
        l.close();
      }
    } finally {
      x.cleanup();
    }
  });
});

describe('one keeper per install', () => {
  const runnerProc = (configPath: string, port: string) =>
    spawn(process.execPath, ['--import', 'tsx', 'scripts/runner.ts', '--config', configPath], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, KEEPER_PORT: port },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const runSync = (configPath: string, port: string) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'scripts/runner.ts', '--config', configPath], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, KEEPER_PORT: port },
      encoding: 'utf8',
      timeout: 30_000,
    });

  test('a second runner on the same ledger refuses, naming the first; the CLI still works beside it; a stale lock is taken over', { timeout: 60_000 }, async () => {
    const inst = makeTempInstall();
    const first = runnerProc(inst.configPath, '0');
    let out = '';
    first.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((r) => first.on('close', (code) => r(code)));
    try {
      const deadline = Date.now() + 40_000;
      while (!/listening on http:\S+:(\d+)/.test(out)) {
        if (Date.now() > deadline || first.exitCode !== null) throw new Error(`first runner did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const port = /listening on http:\S+:(\d+)/.exec(out)![1];
      const second = runSync(inst.configPath, '0');
      assert.equal(second.status, 1);
      assert.equal(second.stderr.trim(), `another keeper (pid ${first.pid}, port ${port}) is running on this install`);
      const cli = spawnSync(KEEPER, ['--config', inst.configPath, '--json', 'backup', 'list'], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(cli.status, 0, cli.stderr);
      first.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.ok(!existsSync(join(inst.config.paths.state, 'keeper.lock')), 'released on a clean stop');
      // a lock left by a process that is gone does not keep the next runner out
      writeFileSync(join(inst.config.paths.state, 'keeper.lock'), JSON.stringify({ pid: spawnSync('true').pid, port: 1234, start: '1' }));
      const next = runnerProc(inst.configPath, '0');
      let nextOut = '';
      next.stdout.on('data', (b: Buffer) => (nextOut += b.toString()));
      const nextExit = new Promise<number | null>((r) => next.on('close', (code) => r(code)));
      while (!/listening on/.test(nextOut)) {
        if (next.exitCode !== null) throw new Error('the runner did not take over a stale lock');
        await new Promise((r) => setTimeout(r, 100));
      }
      next.kill('SIGTERM');
      assert.equal(await nextExit, 0);
    } finally {
      if (first.exitCode === null) first.kill('SIGKILL');
      inst.cleanup();
    }
  });

  test('a busy port is one sentence, not a stack trace', { timeout: 40_000 }, async () => {
    const inst = makeTempInstall();
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = String((blocker.address() as { port: number }).port);
    try {
      const r = runSync(inst.configPath, port);
      assert.equal(r.status, 1);
      assert.equal(r.stderr.trim(), `port ${port} is in use; stop the other process or set KEEPER_PORT`);
      assert.ok(!existsSync(join(inst.config.paths.state, 'keeper.lock')), 'the lock is released');
    } finally {
      blocker.close();
      inst.cleanup();
    }
  });
});

describe('npm start with no configuration', () => {
  test('brings up the demo sandbox, serves health, prints a token, stops cleanly on SIGTERM', { timeout: 85_000 }, async () => {
    const demo = mkdtempSync(join(tmpdir(), 'keeper-demo-'));
    const env: NodeJS.ProcessEnv = { ...process.env, KEEPER_DEMO_DIR: demo, KEEPER_PORT: '0' };
    delete env.KEEPER_CONFIG;
    delete env.KEEPER_TEST_TASKS;
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/runner.ts'], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    try {
      const deadline = Date.now() + 70_000;
      while (!/listening on (http:\S+)/.test(out) && !/^TOKEN=/m.test(out)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`runner did not start:\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      while (!/^TOKEN=/m.test(out)) await new Promise((r) => setTimeout(r, 100));
      const url = /listening on (http:\S+)/.exec(out)![1];
      const token = /^TOKEN=(\S+)/m.exec(out)![1];
      // a way in as printed: a sign-in link with the token in its fragment, and the demo's admin
      assert.ok(out.includes(`sign in (link valid 12 h): ${url}/#access_token=${token}`), out);
      assert.match(out, /user admin, password \S+/);
      // a second runner on the same demo refuses, and leaves the first one's sandbox running
      const second = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/runner.ts'], { cwd: PROJECT_ROOT, env, encoding: 'utf8', timeout: 30_000 });
      assert.equal(second.status, 1, second.stderr);
      assert.equal(second.stderr.trim(), `another keeper (pid ${child.pid}, port ${new URL(url).port}) is running on this install`);
      assert.doesNotMatch(second.stderr, /bringing up the demo/);
      const h = await fetch(`${url}/api/health`);
      const body = (await h.json()) as { status: string; checks: { name: string; status: string }[] };
      assert.equal(h.status, 200, JSON.stringify(body));
      assert.equal(body.status, 'ok');
      const svc = await fetch(`${url}/api/system/services`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(svc.status, 200);
      const units = ((await svc.json()) as { units: { unit: string; active: boolean }[] }).units;
      assert.ok(units.some((u) => u.unit === 'phpborg-worker@1' && u.active));
      child.kill('SIGTERM');
      assert.equal(await exited, 0, err);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await downSandbox(demo).catch(() => {});
      rmSync(demo, { recursive: true, force: true });
    }
  });
});
