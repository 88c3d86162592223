// Tasks that exist only for the platform's own tests: visible to getTask() only when
// KEEPER_TEST_TASKS=1 is in the environment of the process (runner, CLI) AND passed to its helper.
// They do nothing privileged: sleep, echo what they were given, print garbage, fail.
import * as v from 'valibot';
import { readFileSync } from 'node:fs';
import { defineTask, TaskError, type TaskDef, type TaskEntry } from '../task.ts';

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });

const SleepParams = v.object({
  ms: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(600_000)), 1000),
  steps: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1000)), 5),
  secret: v.optional(v.string()),
});

async function sleepRun(ctx: Parameters<TaskDef['run']>[0], p: v.InferOutput<typeof SleepParams>) {
  for (let i = 1; i <= p.steps; i++) {
    await sleep(p.ms / p.steps, ctx.signal);
    ctx.progress('test.tick', Math.round((i / p.steps) * 100), `tick ${i} of ${p.steps}`, { i, of: p.steps });
  }
  return { pid: process.pid, slept_ms: p.ms };
}

// already loaded: they are tiny, and tests want them as they are
const entry = (maintenance: boolean, def: TaskDef): TaskEntry => ({ maintenance, load: async () => def });

export const testTasks: Record<string, TaskEntry> = {
  /** maintenance: holds the lock while it sleeps */
  'test.sleep': entry(true, defineTask({ name: 'test.sleep', params: SleepParams, run: sleepRun })),
  /** same, without the lock */
  'test.ticks': entry(false, defineTask({ name: 'test.ticks', params: SleepParams, run: sleepRun })),
  /** reports how it was started, so tests can check that parameters stayed off argv/env */
  'test.echo': entry(false, defineTask({
    name: 'test.echo',
    params: v.object({ secret: v.optional(v.string()), value: v.optional(v.unknown()) }),
    async run(ctx, p) {
      ctx.log('info', 'echo task ran');
      const cmdline = readFileSync('/proc/self/cmdline', 'utf8').split('\0').filter(Boolean);
      return { pid: process.pid, argv: cmdline, env_keys: Object.keys(process.env).sort(), has_secret: typeof p.secret === 'string', value: p.value ?? null };
    },
  })),
  /** breaks the protocol */
  'test.garbage': entry(false, defineTask({
    name: 'test.garbage',
    params: v.object({}),
    async run(ctx) {
      ctx.progress('test.start', 10, 'about to misbehave');
      process.stdout.write('this is not JSON at all\n');
      await sleep(5000, ctx.signal);
      return null;
    },
  })),
  /** fails with a TaskError */
  'test.fail': entry(true, defineTask({
    name: 'test.fail',
    params: v.object({ code: v.optional(v.string(), 'test_failure') }),
    async run(ctx, p) {
      ctx.progress('test.before_failure', 50, 'half way');
      throw new TaskError(p.code, 'the test task failed on purpose', 'test.before_failure', { hint: 'none' });
    },
  })),
  /** ends as rolled_back */
  'test.rollback': entry(false, defineTask({
    name: 'test.rollback',
    params: v.object({}),
    async run() {
      return { status: 'rolled_back' as const, result: { rolled_back_to: 'nothing' } };
    },
  })),
};
