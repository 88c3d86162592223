// The crash tests' tools: start a job whose helper SIGKILLs itself at a named step (KEEPER_FAULT_STEP,
// honoured only with KEEPER_TEST_TASKS=1), find every plain-text temporary an operation could leave,
// and write the fault table (step × outcome) the README shows.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { listEvents, type JobView } from '../../state/jobs.ts';
import { openOperations } from '../../state/operations.ts';
import type { Ledger } from '../../state/ledger.ts';
import type { Sandbox } from './sandbox.ts';
import type { Runner } from '../../runtime/runner.ts';
import { PROJECT_ROOT } from '../../runtime/helper/spawn.ts';

/** Runs `start` (which spawns the job's helper) with the fault armed for that helper only. */
export async function withFault<T>(step: string, start: () => Promise<T>): Promise<T> {
  const saved = { tasks: process.env.KEEPER_TEST_TASKS, fault: process.env.KEEPER_FAULT_STEP };
  process.env.KEEPER_TEST_TASKS = '1';
  process.env.KEEPER_FAULT_STEP = step;
  try {
    return await start();
  } finally {
    if (saved.tasks === undefined) delete process.env.KEEPER_TEST_TASKS;
    else process.env.KEEPER_TEST_TASKS = saved.tasks;
    if (saved.fault === undefined) delete process.env.KEEPER_FAULT_STEP;
    else process.env.KEEPER_FAULT_STEP = saved.fault;
  }
}

/** A 202 {job_id} answer (asserted), followed to the job's end. */
export async function finished(runner: Runner, res: Promise<Response>): Promise<JobView> {
  const r = await res;
  assert.equal(r.status, 202, await r.clone().text());
  const { job_id } = (await r.json()) as { job_id: string };
  return runner.jobs.wait(job_id, 120_000);
}

/** Starts a job with its helper set to die at `step` and follows it through its recovery. */
export async function killedAt(runner: Runner, step: string, start: () => Promise<Response>): Promise<JobView> {
  // the helper is spawned while the request is handled: the fault is armed for that spawn only
  const res = await withFault(step, start);
  const j = await finished(runner, Promise.resolve(res));
  assertKilledAt(runner.ledger, j, step);
  return j;
}

/** The environment of a child process (the emergency script) that kills itself at `step`. */
export const faultEnv = (step: string): NodeJS.ProcessEnv => ({ ...process.env, KEEPER_TEST_TASKS: '1', KEEPER_FAULT_STEP: step });

/**
 * Asserts the job's first helper really died at `step`: it reported the step, then either a recovery
 * took over, or (no operation open yet) the job says the helper was killed and nothing was changed.
 */
export function assertKilledAt(ledger: Ledger, job: JobView, step: string): void {
  const events = listEvents(ledger, job.id);
  const trail = events.map((e) => e.step ?? e.message).join(' | ');
  assert.ok(events.some((e) => e.step === step), `job ${job.id} reached ${step} (events: ${trail})`);
  const recovered = events.some((e) => e.type === 'log' && /killed by SIGKILL.*recovering the install/.test(e.message ?? ''));
  const crashedClean = job.error?.code === 'helper_crashed' && /killed by SIGKILL.*nothing was changed/.test(job.error.message);
  assert.ok(recovered || crashedClean, `the helper of job ${job.id} was killed at ${step} and the job says what became of it (${JSON.stringify(job.error)}; events: ${trail})`);
}

/** Every leftover an operation could leave: staging and aside trees, temp copies, partial archives and dumps, defaults files. */
export function leftovers(sb: Sandbox): string[] {
  const c = sb.config;
  const found: string[] = [];
  const scan = (dir: string, match: (n: string) => boolean) => {
    if (!existsSync(dir)) return;
    for (const n of readdirSync(dir)) if (match(n)) found.push(join(dir, n));
  };
  const keeperTemp = (n: string) => /keeper-(staging|old|new|tmp)|\.keeper-tmp$/.test(n);
  scan(dirname(c.paths.code), keeperTemp);
  scan(c.paths.code, keeperTemp);
  for (const d of [c.paths.etc, c.paths.ssh, c.paths.sudoers, c.paths.systemd]) {
    scan(dirname(d), (n) => n.startsWith(`.${basename(d)}.keeper-`));
    scan(d, keeperTemp);
  }
  scan(c.paths.storage, (n) => n.endsWith('.partial') || n.includes('.database.sql'));
  scan(tmpdir(), (n) => n.startsWith('keeper-my-'));
  scan(join(c.paths.state, 'tmp'), () => true);
  return found;
}

export function assertClean(sb: Sandbox, ledger: Ledger): void {
  assert.deepEqual(leftovers(sb), [], 'no temporary left');
  assert.deepEqual(openOperations(ledger).map((e) => `${e.kind} #${e.id} at ${e.step}`), [], 'no operation left open');
}

export interface FaultRow {
  operation: string;
  step: string;
  /** the install after recovery */
  outcome: 'before' | 'after';
  job: string;
}

/** Writes the rows to var/faults/<name>.json (the README's fault table is made from these files). */
export function writeFaultTable(name: string, rows: FaultRow[]): void {
  const dir = join(PROJECT_ROOT, 'var', 'faults');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(rows, null, 2) + '\n');
}
