// The weekly scheduled backup, in the runner. croner computes the next occurrence of
// backup_scheduled_day at backup_scheduled_time in the install's timezone; our own timer wakes up
// for it. Time is read only from the Clock binding and all decisions happen in tick(), so tests set
// the clock and call tick() instead of waiting a week.
//
// The armed occurrence is persisted in the ledger (state/schedule.ts), which is how a run
// missed while the runner was down is found at the next start: run once if less than a day late,
// skip (audited) otherwise. A run that meets another maintenance operation is retried until it
// starts; the maintenance lock makes overlap impossible.
import { Cron } from 'croner';
import type { KeeperConfig } from './config.ts';
import type { Clock, Jobs, PhpborgDb } from './bindings.ts';
import type { Actor } from './task.ts';
import type { Ledger } from '../state/ledger.ts';
import { getSettings, type KeeperSettings } from '../state/settings.ts';
import { audit } from '../state/audit.ts';
import { readScheduleState, writeScheduleState, type ScheduleState } from '../state/schedule.ts';
import { readPhpborgPrefs, resolveTimezone, isValidTimezone } from './locale.ts';
import { errorMessage } from './error-message.ts';

export const SCHEDULE_TASK = 'backup.create';
export const SCHEDULER_ACTOR: Actor = { id: null, name: 'scheduler' };
/** a missed run later than this is skipped, not caught up */
export const CATCH_UP_LIMIT_MS = 24 * 3600 * 1000;
const DOW: Record<KeeperSettings['backup_scheduled_day'], number> = {
  sunday: 0,
  monday: 1,
  tuesday: 2,
  wednesday: 3,
  thursday: 4,
  friday: 5,
  saturday: 6,
};

export interface ScheduleSpec {
  enabled: boolean;
  day: KeeperSettings['backup_scheduled_day'];
  time: string;
  timezone: string;
}

export function cronPattern(spec: Pick<ScheduleSpec, 'day' | 'time'>): string {
  const [hh, mm] = spec.time.split(':').map(Number);
  return `${mm} ${hh} * * ${DOW[spec.day]}`;
}

/** The first occurrence strictly after `from`, or null when the schedule is off. */
export function nextOccurrence(spec: ScheduleSpec, from: Date): Date | null {
  if (!spec.enabled) return null;
  const cron = new Cron(cronPattern(spec), { timezone: spec.timezone });
  try {
    return cron.nextRun(from);
  } finally {
    cron.stop();
  }
}

const signatureOf = (s: ScheduleSpec) => `${s.enabled ? 'on' : 'off'}|${s.day}|${s.time}|${s.timezone}`;

export interface ScheduleDeps {
  config: KeeperConfig;
  ledger: Ledger;
  phpborg: PhpborgDb;
  clock: Clock;
}

/** The install's timezone: phpBorg's app.timezone (remembered for when its DB is down), .env, system. */
export async function scheduleTimezone(d: ScheduleDeps, remembered: string | null): Promise<{ timezone: string; db_timezone: string | null }> {
  try {
    const prefs = await readPhpborgPrefs(d.phpborg);
    const fromDb = prefs.get('app.timezone')?.trim() ?? null;
    return { timezone: resolveTimezone(prefs, d.config).timezone, db_timezone: fromDb && isValidTimezone(fromDb) ? fromDb : null };
  } catch {
    if (remembered && isValidTimezone(remembered)) return { timezone: remembered, db_timezone: remembered };
    return { timezone: resolveTimezone(null, d.config).timezone, db_timezone: null };
  }
}

async function currentSpec(d: ScheduleDeps, state: ScheduleState | null): Promise<{ spec: ScheduleSpec; db_timezone: string | null }> {
  const s = getSettings(d.ledger, d.config.paths.storage);
  const tz = await scheduleTimezone(d, state?.db_timezone ?? null);
  return {
    spec: { enabled: s.backup_scheduled_enabled, day: s.backup_scheduled_day, time: s.backup_scheduled_time, timezone: tz.timezone },
    db_timezone: tz.db_timezone,
  };
}

export interface NextRunInfo {
  enabled: boolean;
  /** ISO; never in the past: for a pending catch-up it is now (the run starts as soon as the runner evaluates) */
  next_run: string | null;
  /** set when next_run catches up a missed (or deferred) run: that run's original due time (ISO) */
  catch_up_of: string | null;
  timezone: string;
  day: string;
  time: string;
}

/**
 * The next scheduled run, for `keeper status` and GET settings. Works without a running scheduler:
 * the armed occurrence when it matches the settings and is still ahead; once it is past (runner down,
 * or waiting for another operation), the catch-up (labelled with catch_up_of) while it is less than
 * CATCH_UP_LIMIT_MS late, else the next occurrence from the clock (the late one will be skipped).
 */
export async function nextScheduledRun(d: ScheduleDeps): Promise<NextRunInfo> {
  const state = readScheduleState(d.ledger);
  const { spec } = await currentSpec(d, state);
  const now = d.clock.now();
  let next: Date | null = null;
  let catchUpOf: string | null = null;
  if (spec.enabled) {
    const armed = state && state.signature === signatureOf(spec) && state.next_due ? new Date(state.next_due) : null;
    if (armed && armed.getTime() >= now.getTime()) next = armed;
    else if (armed && now.getTime() - armed.getTime() <= CATCH_UP_LIMIT_MS) {
      next = now;
      catchUpOf = armed.toISOString();
    } else next = nextOccurrence(spec, now);
  }
  return {
    enabled: spec.enabled,
    next_run: next ? next.toISOString() : null,
    catch_up_of: catchUpOf,
    timezone: spec.timezone,
    day: spec.day,
    time: spec.time,
  };
}

export type TickOutcome =
  | { action: 'idle' }
  | { action: 'started'; jobId: string; due: string; caught_up: boolean }
  | { action: 'busy'; due: string; runningJobId: string }
  | { action: 'error'; due: string; message: string }
  | { action: 'skipped'; due: string; late_ms: number };

export interface SchedulerOptions {
  /** arm real timers (the runner); tests leave it off and call tick() */
  timers?: boolean;
  /** longest sleep between evaluations: picks up settings changed by another process, clock jumps */
  maxSleepMs?: number;
  /** wait before trying again when another maintenance operation runs */
  retryMs?: number;
  /** the task and params a run starts (tests use a test task); default backup.create {type: scheduled} */
  task?: string;
  params?: unknown;
}

export interface Scheduler {
  /** Loads the armed occurrence, catches up a missed run (< 1 day late), arms the timer. */
  start(): Promise<TickOutcome>;
  /** Settings (or timezone) changed: re-arm now. */
  reschedule(): Promise<void>;
  /** Evaluates now: fires a due run. Deterministic; the timer calls nothing else. */
  tick(): Promise<TickOutcome>;
  nextRun(): Date | null;
  stop(): void;
}

// Live schedulers in this process, so the settings route can re-arm them (see settingsChanged).
const live = new Set<Scheduler>();

/** Called after keeper settings change: every scheduler in this process re-arms at once. */
export async function settingsChanged(): Promise<void> {
  await Promise.all([...live].map((s) => s.reschedule().catch(() => {})));
}

export function createScheduler(d: ScheduleDeps & { jobs: Pick<Jobs, 'start'> }, opts: SchedulerOptions = {}): Scheduler {
  const maxSleepMs = opts.maxSleepMs ?? 60_000;
  const retryMs = opts.retryMs ?? 30_000;
  let state: ScheduleState | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let pendingRetry = false;
  // ticks run one at a time; a tick requested meanwhile runs right after
  let chain: Promise<unknown> = Promise.resolve();

  const record = (action: string, outcome: string, target: string | null, details: Record<string, unknown>) => {
    try {
      audit(d.ledger, { actor: SCHEDULER_ACTOR, action, target, outcome, details }, d.clock.now());
    } catch (e) {
      console.error(`[keeper] scheduler cannot write the audit log: ${errorMessage(e)}`);
    }
  };

  /** Re-arms when the settings or timezone differ from what the armed occurrence was computed for. */
  const sync = async () => {
    const now = d.clock.now();
    const { spec, db_timezone } = await currentSpec(d, state);
    const sig = signatureOf(spec);
    if (!state || state.signature !== sig) {
      const prev = state;
      const next = nextOccurrence(spec, now);
      state = {
        signature: sig,
        next_due: next ? next.toISOString() : null,
        armed_at: now.toISOString(),
        last_due: prev?.last_due ?? null,
        last_job_id: prev?.last_job_id ?? null,
        db_timezone: db_timezone ?? prev?.db_timezone ?? null,
        deferred_due: null,
      };
      writeScheduleState(d.ledger, state, now);
      if (prev && prev.signature !== sig) {
        record('schedule.armed', 'succeeded', null, { enabled: spec.enabled, day: spec.day, time: spec.time, timezone: spec.timezone, next_run: state.next_due });
      }
    } else if (db_timezone && state.db_timezone !== db_timezone) {
      state = { ...state, db_timezone };
      writeScheduleState(d.ledger, state, now);
    }
    return spec;
  };

  const evaluate = async (atStart: boolean): Promise<TickOutcome> => {
    // At start the persisted occurrence is the reference: if it is past, the runner missed it.
    if (atStart) state = readScheduleState(d.ledger);
    await sync();
    const s = state!;
    const now = d.clock.now();
    if (!s.next_due) return { action: 'idle' };
    const due = new Date(s.next_due);
    if (now.getTime() < due.getTime()) return { action: 'idle' };
    const late = now.getTime() - due.getTime();
    const advance = (extra: Partial<ScheduleState>) => {
      const spec = s.signature.split('|');
      const next = nextOccurrence(
        { enabled: spec[0] === 'on', day: spec[1] as ScheduleSpec['day'], time: spec[2], timezone: spec[3] },
        new Date(Math.max(now.getTime(), due.getTime())),
      );
      state = { ...s, ...extra, next_due: next ? next.toISOString() : null, deferred_due: null };
      writeScheduleState(d.ledger, state, now);
    };
    if (late > CATCH_UP_LIMIT_MS) {
      record('schedule.missed', 'skipped', null, {
        due: s.next_due,
        late_ms: late,
        message: 'scheduled backup missed while keeper was not running; more than a day late, so not caught up',
      });
      advance({});
      return { action: 'skipped', due: due.toISOString(), late_ms: late };
    }
    // Late by more than a timer period: the runner was down (or asleep) at the due time.
    const caughtUp = atStart || late > maxSleepMs + 60_000;
    let r;
    try {
      r = d.jobs.start(opts.task ?? SCHEDULE_TASK, opts.params ?? { type: 'scheduled' }, SCHEDULER_ACTOR);
    } catch (e) {
      const message = errorMessage(e);
      if (s.deferred_due !== s.next_due) {
        record('schedule.run', 'failed', null, { due: s.next_due, message: `cannot start the scheduled backup (will retry): ${message}` });
        state = { ...s, deferred_due: s.next_due };
        writeScheduleState(d.ledger, state, now);
      }
      pendingRetry = true;
      return { action: 'error', due: due.toISOString(), message };
    }
    if (!r.ok) {
      if (s.deferred_due !== s.next_due) {
        record('schedule.run', 'deferred', r.runningJobId, {
          due: s.next_due,
          message: 'another maintenance operation is running; the scheduled backup starts after it',
        });
        state = { ...s, deferred_due: s.next_due };
        writeScheduleState(d.ledger, state, now);
      }
      pendingRetry = true;
      return { action: 'busy', due: due.toISOString(), runningJobId: r.runningJobId };
    }
    pendingRetry = false;
    record('schedule.run', 'started', r.jobId, {
      due: s.next_due,
      late_ms: late,
      ...(caughtUp ? { caught_up: true, message: 'missed run caught up' } : {}),
    });
    advance({ last_due: s.next_due, last_job_id: r.jobId });
    return { action: 'started', jobId: r.jobId, due: due.toISOString(), caught_up: caughtUp };
  };

  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const p = chain.then(f, f);
    chain = p.catch(() => {});
    return p;
  };

  const arm = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (stopped || !opts.timers) return;
    let delay = maxSleepMs;
    if (state?.next_due) delay = Math.min(delay, Math.max(0, new Date(state.next_due).getTime() - d.clock.now().getTime()));
    if (pendingRetry) delay = Math.min(delay, retryMs);
    timer = setTimeout(() => {
      void self.tick().catch((e) => console.error(`[keeper] scheduler: ${errorMessage(e)}`));
    }, delay);
    timer.unref();
  };

  const self: Scheduler = {
    start() {
      stopped = false;
      live.add(self);
      return serial(() => evaluate(true)).finally(arm);
    },
    reschedule() {
      // sync() inside evaluate() compares the settings with the armed ones; a changed time may
      // already be due (e.g. a minute ahead), so evaluate right away too.
      return serial(() => evaluate(false)).then(() => undefined).finally(arm);
    },
    tick() {
      return serial(() => evaluate(false)).finally(arm);
    },
    nextRun() {
      return state?.next_due ? new Date(state.next_due) : null;
    },
    stop() {
      stopped = true;
      live.delete(self);
      if (timer) clearTimeout(timer);
      timer = null;
    },
  };
  return self;
}
