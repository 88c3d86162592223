// The weekly schedule: fires at the right local time (timezone from .env, then from phpBorg's
// app.timezone), follows a settings change at once, catches a missed run up once (< 1 day late),
// skips an older one, and waits for a running maintenance operation instead of overlapping it.
// The clock is driven (Clock binding) and evaluation is triggered with tick(): no waiting a week.
process.env.KEEPER_TEST_TASKS = '1';

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Clock } from '../runtime/bindings.ts';
import { openLedger, ledgerPath, type Ledger } from '../state/ledger.ts';
import { updateSettings } from '../state/settings.ts';
import { listAudit } from '../state/audit.ts';
import { phpborgDb } from '../runtime/phpborg-db.ts';
import { createJobs, type JobsRuntime } from '../runtime/jobs.ts';
import { getTask } from '../functions/tasks.ts';
import { createScheduler, nextOccurrence, nextScheduledRun, settingsChanged, CATCH_UP_LIMIT_MS } from '../runtime/schedule.ts';
import { makeTempInstall, type TempInstall } from './support/runner.ts';
import { startSandbox, type Sandbox } from './support/sandbox.ts';
import type { Runner } from '../runtime/runner.ts';
import { createRunner } from '../scripts/runner.ts';
import { run } from '../runtime/exec.ts';
import { getBackup } from '../state/catalog.ts';

class TestClock implements Clock {
  constructor(private t: number) {}
  now(): Date {
    return new Date(this.t);
  }
  set(iso: string): void {
    this.t = new Date(iso).getTime();
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

describe('nextOccurrence', () => {
  test('the same day and time are different instants in different zones', () => {
    const from = new Date('2025-01-20T00:00:00Z'); // a Monday
    const spec = { enabled: true, day: 'monday' as const, time: '14:30' };
    assert.equal(nextOccurrence({ ...spec, timezone: 'Europe/Paris' }, from)?.toISOString(), '2025-01-20T13:30:00.000Z');
    assert.equal(nextOccurrence({ ...spec, timezone: 'America/New_York' }, from)?.toISOString(), '2025-01-20T19:30:00.000Z');
    assert.equal(nextOccurrence({ ...spec, timezone: 'Asia/Tokyo' }, from)?.toISOString(), '2025-01-20T05:30:00.000Z');
    // summer time: Paris is UTC+2
    assert.equal(nextOccurrence({ ...spec, timezone: 'Europe/Paris' }, new Date('2025-07-01T00:00:00Z'))?.toISOString(), '2025-07-07T12:30:00.000Z');
    assert.equal(nextOccurrence({ ...spec, enabled: false, timezone: 'UTC' }, from), null);
  });
});

describe('scheduler (timezone from .env, phpBorg DB unreachable)', () => {
  let inst: TempInstall;
  let ledger: Ledger;
  let jobs: JobsRuntime;
  const clock = new TestClock(Date.parse('2025-01-20T00:00:00Z')); // Monday 09:00 in Tokyo
  const deps = () => ({ config: inst.config, ledger, phpborg: phpborgDb(inst.config), clock, jobs });
  const opts = { task: 'test.ticks', params: { ms: 50, steps: 1 } };

  before(() => {
    inst = makeTempInstall({ env: { APP_TIMEZONE: 'Asia/Tokyo' } });
    ledger = openLedger(ledgerPath(inst.config.paths.state));
    jobs = createJobs({ config: inst.config, configPath: inst.configPath, ledger, tasks: getTask });
  });
  after(async () => {
    await jobs.shutdown(5000);
    ledger.close();
    inst.cleanup();
  });

  test('off by default: no next run', async () => {
    const s = createScheduler(deps(), opts);
    assert.deepEqual(await s.start(), { action: 'idle' });
    assert.equal(s.nextRun(), null);
    s.stop();
  });

  test('fires at the configured local time, once, then a week later', async () => {
    updateSettings(ledger, inst.config.paths.storage, { backup_scheduled_enabled: true, backup_scheduled_day: 'wednesday', backup_scheduled_time: '03:15' });
    const s = createScheduler(deps(), opts);
    await s.start();
    // Wednesday 03:15 in Tokyo (UTC+9) = Tuesday 18:15 UTC
    assert.equal(s.nextRun()?.toISOString(), '2025-01-21T18:15:00.000Z');
    const info = await nextScheduledRun(deps());
    assert.equal(info.timezone, 'Asia/Tokyo');
    assert.equal(info.next_run, '2025-01-21T18:15:00.000Z');
    assert.equal(info.catch_up_of, null);

    clock.set('2025-01-21T18:14:59Z');
    assert.equal((await s.tick()).action, 'idle');
    clock.set('2025-01-21T18:15:00Z');
    const fired = await s.tick();
    assert.equal(fired.action, 'started');
    assert.ok(fired.action === 'started' && !fired.caught_up);
    if (fired.action === 'started') {
      const job = await jobs.wait(fired.jobId, 30_000);
      assert.equal(job.status, 'succeeded');
      assert.equal(job.actor.name, 'scheduler');
    }
    assert.equal((await s.tick()).action, 'idle', 'a due run fires once');
    assert.equal(s.nextRun()?.toISOString(), '2025-01-28T18:15:00.000Z');
    s.stop();
  });

  test('a settings change re-arms at once', async () => {
    const s = createScheduler(deps(), opts);
    await s.start();
    updateSettings(ledger, inst.config.paths.storage, { backup_scheduled_day: 'friday', backup_scheduled_time: '22:00' });
    await settingsChanged();
    // Friday 22:00 Tokyo = Friday 13:00 UTC; now is Tue 18:15 UTC
    assert.equal(s.nextRun()?.toISOString(), '2025-01-24T13:00:00.000Z');
    assert.equal((await nextScheduledRun(deps())).next_run, '2025-01-24T13:00:00.000Z');
    const armed = listAudit(ledger, { action: 'schedule.armed' }).items[0];
    assert.equal((armed.details as { day: string }).day, 'friday');
    s.stop();
  });

  test('a run missed while keeper was down is caught up once at the next start', async () => {
    // the scheduler above armed Friday 13:00 UTC and "the runner stopped"; it comes back 3 h late
    clock.set('2025-01-24T16:00:00Z');
    // meanwhile status / GET settings show no past time: the catch-up, now, labelled with the missed due
    const pending = await nextScheduledRun(deps());
    assert.equal(pending.next_run, '2025-01-24T16:00:00.000Z');
    assert.equal(pending.catch_up_of, '2025-01-24T13:00:00.000Z');
    const s1 = createScheduler(deps(), opts);
    const r = await s1.start();
    assert.equal(r.action, 'started');
    assert.ok(r.action === 'started' && r.caught_up);
    if (r.action === 'started') await jobs.wait(r.jobId, 30_000);
    s1.stop();
    const entry = listAudit(ledger, { action: 'schedule.run' }).items[0];
    assert.equal(entry.outcome, 'started');
    assert.match(String((entry.details as { message?: string }).message), /missed run caught up/);
    // another restart: nothing more to catch up
    const s2 = createScheduler(deps(), opts);
    assert.equal((await s2.start()).action, 'idle');
    assert.equal(s2.nextRun()?.toISOString(), '2025-01-31T13:00:00.000Z');
    s2.stop();
    assert.equal(listAudit(ledger, { action: 'schedule.run' }).total, 2);
  });

  test('a run missed by more than a day is skipped, and the audit log says so', async () => {
    clock.set(new Date(Date.parse('2025-01-31T13:00:00Z') + CATCH_UP_LIMIT_MS + 60_000).toISOString());
    // too late to catch up: status shows the next occurrence from the clock, not the stale due time
    const info = await nextScheduledRun(deps());
    assert.equal(info.next_run, '2025-02-07T13:00:00.000Z');
    assert.equal(info.catch_up_of, null);
    const s = createScheduler(deps(), opts);
    const r = await s.start();
    assert.equal(r.action, 'skipped');
    assert.equal(listAudit(ledger, { action: 'schedule.missed' }).items[0].outcome, 'skipped');
    assert.equal(s.nextRun()?.toISOString(), '2025-02-07T13:00:00.000Z');
    s.stop();
  });

  test('a due run meeting a running maintenance operation waits for it, never overlaps', async () => {
    const s = createScheduler(deps(), { task: 'test.sleep', params: { ms: 50, steps: 1 } });
    await s.start();
    const blocker = jobs.start('test.sleep', { ms: 1500, steps: 3 }, { id: 1, name: 'admin' });
    assert.ok(blocker.ok);
    clock.set('2025-02-07T13:00:05Z');
    const r1 = await s.tick();
    assert.equal(r1.action, 'busy');
    assert.ok(r1.action === 'busy' && blocker.ok && r1.runningJobId === blocker.jobId);
    assert.equal((await s.tick()).action, 'busy', 'still waiting');
    assert.equal(listAudit(ledger, { action: 'schedule.run' }).items[0].outcome, 'deferred');
    if (blocker.ok) await jobs.wait(blocker.jobId, 30_000);
    const r2 = await s.tick();
    assert.equal(r2.action, 'started');
    if (r2.action === 'started' && blocker.ok) {
      const job = await jobs.wait(r2.jobId, 30_000);
      const first = await jobs.wait(blocker.jobId);
      assert.ok(job.started_at! >= first.finished_at!, 'the scheduled run started after the other one ended');
    }
    assert.equal(listAudit(ledger, { action: 'schedule.run', per_page: 200 }).items.filter((e) => e.outcome === 'deferred').length, 1, 'deferral audited once');
    s.stop();
  });
});

describe('scheduler in the sandbox (timezone from phpBorg app.timezone, real backup)', () => {
  let sb: Sandbox;
  let runner: Runner;
  const clock = new TestClock(Date.parse('2025-03-03T08:00:00Z')); // a Monday

  before(async () => {
    sb = await startSandbox();
    runner = await createRunner(sb.config, sb.info.config, { services: false, log: () => {} });
  });
  after(async () => {
    await runner?.close();
    await sb?.down();
  });

  test("follows phpBorg's app.timezone, re-arms when it changes, and runs a real scheduled backup", async () => {
    const b = runner.bindings;
    updateSettings(b.ledger, sb.config.paths.storage, { backup_scheduled_enabled: true, backup_scheduled_day: 'monday', backup_scheduled_time: '10:30' });
    const s = createScheduler({ ...b, clock });
    await s.start();
    // the sandbox's app.timezone is Europe/Paris (UTC+1 in March before the 30th)
    assert.equal(s.nextRun()?.toISOString(), '2025-03-03T09:30:00.000Z');
    await sb.query('UPDATE settings SET `value` = ? WHERE `key` = ?', ['America/New_York', 'app.timezone']);
    assert.equal((await s.tick()).action, 'idle');
    // 10:30 in New York (UTC-5) = 15:30 UTC
    assert.equal(s.nextRun()?.toISOString(), '2025-03-03T15:30:00.000Z');
    assert.equal((await nextScheduledRun({ ...b, clock })).timezone, 'America/New_York');

    clock.set('2025-03-03T15:30:00Z');
    const r = await s.tick();
    assert.equal(r.action, 'started');
    if (r.action !== 'started') return;
    const job = await runner.jobs.wait(r.jobId, 120_000);
    assert.equal(job.status, 'succeeded', JSON.stringify(job.error));
    assert.equal(job.type, 'backup.create');
    const row = getBackup(b.ledger, (job.result as { id: number }).id);
    assert.equal(row?.backup_type, 'scheduled');
    assert.match(row?.filename ?? '', /-scheduled\.tar\.gz$/);
    s.stop();
  });

  test('keeper status shows the next scheduled backup', async () => {
    const r = await run(process.execPath, ['--import', 'tsx', 'scripts/keeper.ts', '--config', sb.info.config, '--json', 'status'], { cwd: join(import.meta.dirname, '..'), timeoutMs: 60_000 });
    const last = r.stdout.trim().split('\n').at(-1) ?? '{}';
    const status = JSON.parse(last) as { next_scheduled_backup: string | null; next_scheduled_backup_catch_up_of: string | null };
    // the scheduler above (test clock) armed 2025-03-10 14:30 UTC, long past on the real clock and more
    // than a day late: status shows the next Monday 10:30 New York time from now, never the stale time
    const expected = nextOccurrence({ enabled: true, day: 'monday', time: '10:30', timezone: 'America/New_York' }, new Date());
    assert.equal(status.next_scheduled_backup, expected?.toISOString(), r.stderr);
    assert.ok(Date.parse(status.next_scheduled_backup!) > Date.now() - 60_000);
    assert.equal(status.next_scheduled_backup_catch_up_of, null);
  });

  test('PUT settings re-arms a running scheduler at once', async () => {
    const s = createScheduler(runner.bindings); // the runner's real clock
    await s.start();
    const res = await runner.request('/api/phpborg-backup/settings', {
      method: 'PUT',
      headers: { authorization: `Bearer ${await sb.token()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ backup_scheduled_day: 'thursday', backup_scheduled_time: '23:45' }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as { next_run: string };
    const next = s.nextRun();
    assert.ok(next);
    assert.equal(next.toISOString(), body.next_run, 'the API shows what the scheduler armed');
    const local = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', weekday: 'long', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(next);
    assert.equal(local, 'Thursday 23:45');
    s.stop();
  });
});
