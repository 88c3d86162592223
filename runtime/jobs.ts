// The Jobs binding: runs each task in its own single-use helper, records every event in the ledger,
// relays it to live subscribers (SSE, CLI progress), holds the maintenance lock, and tells the
// `finished` listeners (mail) when a job ends. Used by the runner and by the CLI alike.
import type { KeeperConfig } from './config.ts';
import type { Jobs, StartResult } from './bindings.ts';
import type { Actor, TaskLookup } from './task.ts';
import type { Ledger } from '../state/ledger.ts';
import { HttpError } from './errors.ts';
import { spawnHelper, type HelperHandle } from './helper/spawn.ts';
import type { HelperEvent } from './helper/protocol.ts';
import { appendLog, createJob, finishJob, getJob, isFinal, markRunning, recordEvent, setHelperPid, type JobError, type JobView } from '../state/jobs.ts';
import { orphanedOperations, RECOVER_TASK } from './operation/recovery.ts';
import { audit } from '../state/audit.ts';
import { errorMessage } from './error-message.ts';

export interface JobFinishedContext {
  config: KeeperConfig;
  configPath: string;
  ledger: Ledger;
  /** to start follow-up work (the restore drill after a scheduled backup) */
  jobs: Pick<Jobs, 'start'>;
}
/** Called after every job ends (any status), in the process that ran its helper; a throw is logged. */
export type JobFinishedListener = (job: JobView, ctx: JobFinishedContext) => void | Promise<void>;

export interface JobsRuntime extends Jobs {
  /** Resolves with the job once it is final and, for a job of this process, its finished listeners ran
   * (jobs run by another process are followed by polling the ledger). */
  wait(jobId: string, timeoutMs?: number): Promise<JobView>;
  /** Jobs whose helper this process is running. */
  running(): string[];
  /** Refuses new jobs, waits (bounded) for running helpers, marks the rest interrupted. */
  shutdown(graceMs: number): Promise<{ finished: string[]; interrupted: string[] }>;
  /**
   * Starts the recovery of every operation whose process is gone: in its own job when that job is
   * still open, else in a new `operation.recover` job. Returns the jobs now recovering.
   */
  recoverOrphans(): string[];
}

/** Who recovery jobs started by keeper itself are attributed to. */
const KEEPER_ACTOR: Actor = { id: null, name: 'keeper' };

export interface JobsOptions {
  config: KeeperConfig;
  configPath: string;
  ledger: Ledger;
  now?: () => Date;
  /** the tasks a job may run */
  tasks: TaskLookup;
  /** told after every job of this runtime ends, whoever started it (API, CLI, schedule) */
  finished?: readonly JobFinishedListener[];
}

// a recovery that itself keeps dying is not retried for ever: the entry is reported instead
const MAX_RECOVERIES = 3;

export function createJobs(opts: JobsOptions): JobsRuntime {
  const { config, configPath, ledger } = opts;
  const now = opts.now ?? (() => new Date());
  const lookup = opts.tasks;
  const finishedListeners = opts.finished ?? [];
  const subscribers = new Map<string, Set<(seq: number) => void>>();
  const helpers = new Map<string, { handle: HelperHandle; done: Promise<void> }>();
  // jobs whose helper we let go at shutdown: it reports to the ledger itself from then on
  const released = new Set<string>();
  let closing = false;

  const publish = (jobId: string, seq: number) => {
    for (const l of subscribers.get(jobId) ?? []) {
      try {
        l(seq);
      } catch {
        /* a broken subscriber must not break the job */
      }
    }
  };

  const finish = async (jobId: string, end: { status: 'succeeded' | 'rolled_back' | 'failed' | 'interrupted'; result?: unknown; error?: JobError | null }, terminal: HelperEvent | null) => {
    if (isFinal(getJob(ledger, jobId)?.status ?? 'failed')) return; // already ended (e.g. interrupted at shutdown)
    let seq = 0;
    if (terminal) seq = recordEvent(ledger, jobId, terminal, now());
    finishJob(ledger, jobId, end, now());
    const job = getJob(ledger, jobId)!;
    try {
      audit(ledger, { actor: job.actor, action: job.type, target: jobId, outcome: job.status, details: job.error ? { error: job.error } : undefined }, now());
    } catch (e) {
      console.error(`[keeper] audit of job ${jobId} failed: ${errorMessage(e)}`);
    }
    publish(jobId, seq);
    for (const l of finishedListeners) {
      try {
        await l(job, { config, configPath, ledger, jobs });
      } catch (e) {
        console.error(`[keeper] job-finished listener failed for ${jobId}: ${errorMessage(e)}`);
      }
    }
  };

  // a helper that died without a result and left an operation open: the job goes on with its recovery
  const recoverJob = (jobId: string, operationIds: number[], actor: Actor, why: string) => {
    const seq = recordEvent(ledger, jobId, { type: 'log', level: 'error', message: `${why}: recovering the install` }, now());
    publish(jobId, seq);
    runHelper(jobId, RECOVER_TASK, { operation_ids: operationIds }, actor, { takeover: true });
  };

  const runHelper = (jobId: string, task: string, params: unknown, actor: Actor, o: { takeover?: boolean } = {}) => {
    let terminal: HelperEvent | null = null;
    let stderrTail = '';
    const handle = spawnHelper(
      config,
      { task, params, job_id: jobId, config_path: configPath, actor },
      {
        onEvent(e) {
          if (terminal || released.has(jobId)) return; // nothing counts after the result
          if (e.type === 'result' || e.type === 'error') {
            terminal = e;
            return; // recorded at exit, together with the final status
          }
          const seq = recordEvent(ledger, jobId, e, now());
          publish(jobId, seq);
        },
        onStderr(text) {
          if (released.has(jobId)) return;
          stderrTail = (stderrTail + text).slice(-2000);
          appendLog(ledger, jobId, text);
        },
      },
      // fault injection (tests) never reaches a recovery
      o.takeover || task === RECOVER_TASK ? { fault: false } : {},
    );
    if (o.takeover) setHelperPid(ledger, jobId, handle.pid ?? null);
    else markRunning(ledger, jobId, handle.pid ?? null, now());
    const done = handle.exited.then(async (exit) => {
      if (released.has(jobId)) return;
      const t = terminal as HelperEvent | null;
      if (exit.protocolError) {
        const error: JobError = { code: 'helper_protocol', message: `the helper broke the protocol and was stopped: ${exit.protocolError}` };
        await finish(jobId, { status: 'failed', error }, { type: 'error', ...error });
      } else if (exit.spawnError) {
        const error: JobError = { code: 'helper_spawn', message: exit.spawnError };
        await finish(jobId, { status: 'failed', error }, { type: 'error', ...error });
      } else if (t && t.type === 'result') {
        await finish(jobId, { status: t.status, result: t.result }, t);
      } else if (t && t.type === 'error') {
        const error: JobError = {
          code: t.code,
          message: t.message,
          ...(t.step ? { step: t.step } : {}),
          ...(t.changed !== undefined ? { changed: t.changed } : {}),
          ...(t.details !== undefined ? { details: t.details } : {}),
        };
        await finish(jobId, { status: 'failed', error }, t);
      } else {
        const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code} without a result`;
        const orphans = closing ? undefined : orphanedOperations(ledger).get(jobId);
        if (orphans?.length && orphans.every((e) => e.recoveries < MAX_RECOVERIES)) {
          recoverJob(jobId, orphans.map((e) => e.id), actor, `the helper ${how} during ${orphans[0].step ?? task}`);
          return;
        }
        const last = stderrTail.trim().split('\n').slice(-3).join(' | ');
        // every change to the install is journaled first: with no entry left open, none was half-made
        const untouched = !orphans?.length;
        const error: JobError = {
          code: 'helper_crashed',
          changed: !untouched,
          message: `the helper ${how}${last ? `: ${last}` : ''}${untouched ? '; nothing was changed' : '; its recovery failed too often, see keeper status'}`,
          details: { exit_code: exit.code, signal: exit.signal },
        };
        await finish(jobId, { status: 'failed', error }, { type: 'error', ...error });
      }
    });
    const entry: { handle: HelperHandle; done: Promise<void> } = {
      handle,
      // wake waiters once more when the finished listeners (mail…) are done too
      done: done.finally(() => {
        // a recovery helper may have taken the job over meanwhile
        if (helpers.get(jobId) === entry) helpers.delete(jobId);
        publish(jobId, 0);
      }),
    };
    helpers.set(jobId, entry);
  };

  const jobs: JobsRuntime = {
    start(task, params, actor): StartResult {
      if (closing) throw new HttpError(503, 'shutting_down', 'keeper is shutting down; try again when it is back');
      const def = lookup(task);
      if (!def) throw new Error(`unknown task ${task}`);
      const r = createJob(ledger, { type: task, params, actor, lock: def.maintenance, now: now() });
      if (!r.ok) {
        try {
          audit(ledger, { actor, action: task, outcome: 'rejected', details: { reason: 'busy', running_job_id: r.runningJobId } }, now());
        } catch {
          /* audit must not hide the 409 */
        }
        return { ok: false, runningJobId: r.runningJobId };
      }
      runHelper(r.job.id, task, params, actor);
      return { ok: true, jobId: r.job.id };
    },

    subscribe(jobId, listener) {
      let set = subscribers.get(jobId);
      if (!set) subscribers.set(jobId, (set = new Set()));
      set.add(listener);
      return () => {
        set!.delete(listener);
        if (set!.size === 0) subscribers.delete(jobId);
      };
    },

    wait(jobId, timeoutMs) {
      return new Promise<JobView>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        let poll: NodeJS.Timeout | undefined;
        let unsub = () => {};
        const stop = () => {
          unsub();
          if (timer) clearTimeout(timer);
          if (poll) clearInterval(poll);
        };
        const check = () => {
          const j = getJob(ledger, jobId);
          if (!j) {
            stop();
            reject(new Error(`no job ${jobId}`));
          } else if (isFinal(j.status) && !helpers.has(jobId)) {
            // a job of ours counts as done once its finished listeners have run as well
            stop();
            resolve(j);
          }
        };
        unsub = jobs.subscribe(jobId, check);
        poll = setInterval(check, 500); // jobs of another process are seen through the ledger
        if (timeoutMs !== undefined) {
          timer = setTimeout(() => {
            stop();
            reject(Object.assign(new Error(`job ${jobId} still running after ${timeoutMs} ms`), { code: 'timeout' }));
          }, timeoutMs);
        }
        check();
      });
    },

    running() {
      return [...helpers.keys()];
    },

    recoverOrphans() {
      if (closing) return [];
      const started: string[] = [];
      for (const [jobId, entries] of orphanedOperations(ledger)) {
        const ids = entries.map((e) => e.id);
        if (jobId && !helpers.has(jobId)) {
          const job = getJob(ledger, jobId)!;
          recoverJob(jobId, ids, job.actor, `the process of this job is gone (it stopped during ${entries[0].step ?? job.type})`);
          started.push(jobId);
        } else if (!jobId && lookup(RECOVER_TASK)) {
          const r = jobs.start(RECOVER_TASK, { operation_ids: ids }, KEEPER_ACTOR);
          if (r.ok) started.push(r.jobId);
        }
      }
      return started;
    },

    async shutdown(graceMs) {
      closing = true;
      const ids = [...helpers.keys()];
      const all = Promise.all([...helpers.values()].map((h) => h.done));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      if (timer) clearTimeout(timer);
      const interrupted: string[] = [];
      for (const [id, h] of helpers) {
        // The helper keeps running on its own (a restore must not be cut in half); closing its
        // stdout tells it to record its own events and outcome in the ledger from now on.
        released.add(id);
        h.handle.child.stdout?.destroy();
        h.handle.child.stderr?.destroy();
        h.handle.child.unref();
        const error: JobError = { code: 'interrupted', message: 'keeper stopped while this job was running; its helper was left to finish on its own' };
        await finish(id, { status: 'interrupted', error }, { type: 'error', ...error });
        interrupted.push(id);
      }
      return { finished: ids.filter((id) => !interrupted.includes(id)), interrupted };
    },
  };
  return jobs;
}
