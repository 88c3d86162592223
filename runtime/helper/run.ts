// The single-use helper: reads ONE request on stdin, runs exactly one task of the registry it is
// handed, writes NDJSON events on stdout, exits (0 on success). Started by runtime/helper/spawn.ts,
// possibly elevated (sudo -n), as the bundle of its entry point (scripts/helper.ts).
import { chownSync, existsSync, readdirSync, statSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import * as v from 'valibot';
import { loadConfig, type KeeperConfig } from '../config.ts';
import { describeValidation } from '../errors.ts';
import { isOutcome, renderTaskError, TaskError, type TaskContext, type TaskLookup } from '../task.ts';
import { faultPoint } from '../operation/fault.ts';
import { errorMessage } from '../error-message.ts';
import { encodeEvent, HelperRequestSchema, type HelperEvent } from './protocol.ts';
import { ledgerPath, openLedger, type Ledger } from '../../state/ledger.ts';
import { finishJob, recordEvent } from '../../state/jobs.ts';
import { assertRootOnly, elevatedFrom } from './trust.ts';
import { handOverStorage, sudoCaller } from './handover.ts';
import { getSettings } from '../../state/settings.ts';
import { setTempStateDir } from '../temp.ts';
import { ownStorageDir } from '../storage-path.ts';

const PROGRESS_INTERVAL_MS = 250;
// Below the runner's priority, so the UI and the API stay responsive while a task uses every core; an
// uncontended helper runs just as fast.
export const HELPER_NICE = 10;
let ledger: Ledger | null = null;
let jobId: string | null = null;
// Once the runner is gone (stdout broken), the helper finishes its work and writes its own events.
let detached = false;

/** Records an event straight into the ledger (when the runner that spawned us is gone). */
function record(e: HelperEvent): void {
  if (!ledger || !jobId) return;
  try {
    recordEvent(ledger, jobId, e);
    if (e.type === 'result') finishJob(ledger, jobId, { status: e.status, result: e.result }, new Date(), { evenIfInterrupted: true });
    if (e.type === 'error') {
      const { type: _t, ...error } = e;
      finishJob(ledger, jobId, { status: 'failed', error }, new Date(), { evenIfInterrupted: true });
    }
  } catch {
    /* nowhere left to report */
  }
}

function emit(e: HelperEvent): void {
  if (detached) return record(e);
  try {
    // each write learns its own fate: an event the runner never got goes to the ledger instead
    process.stdout.write(encodeEvent(e), (err) => {
      if (err) {
        detached = true;
        record(e);
      }
    });
  } catch {
    detached = true;
    record(e);
  }
}

function exit(code: number): void {
  const done = () => process.exit(code);
  if (detached) return done();
  // let the last event drain before leaving
  process.stdout.write('', done);
  setTimeout(done, 2000).unref();
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** When elevated, keep the ledger's WAL files owned by the ledger's owner so the runner can open them. */
function keepLedgerOwner(file: string): void {
  if (process.getuid?.() !== 0) return;
  const st = statSync(file);
  for (const f of [`${file}-wal`, `${file}-shm`]) if (existsSync(f)) chownSync(f, st.uid, st.gid);
}

async function main(tasks: TaskLookup): Promise<number> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readStdin());
  } catch (e) {
    emit({ type: 'error', code: 'bad_request', message: `the helper expects one JSON request on stdin: ${errorMessage(e)}` });
    return 1;
  }
  const req = v.safeParse(HelperRequestSchema, raw);
  if (!req.success) {
    emit({ type: 'error', code: 'bad_request', message: `invalid helper request: ${describeValidation(req.issues).message}` });
    return 1;
  }
  const { task: name, params, job_id, config_path, actor } = req.output;

  let config: KeeperConfig;
  // elevated by an unprivileged runner: the configuration must be one that user cannot have written
  if (elevatedFrom()) {
    try {
      assertRootOnly(config_path);
    } catch (e) {
      emit({ type: 'error', code: 'config_untrusted', message: errorMessage(e) });
      return 1;
    }
  }
  try {
    config = loadConfig(config_path);
    setTempStateDir(config.paths.state);
  } catch (e) {
    emit({ type: 'error', code: 'config', message: errorMessage(e) });
    return 1;
  }
  try {
    const file = ledgerPath(config.paths.state);
    ledger = openLedger(file);
    keepLedgerOwner(file);
    jobId = job_id;
  } catch (e) {
    emit({ type: 'error', code: 'ledger', message: `cannot open the ledger: ${errorMessage(e)}` });
    return 1;
  }

  const entry = tasks(name);
  if (!entry) {
    emit({ type: 'error', code: 'unknown_task', message: `no task named ${name}` });
    return 1;
  }
  const task = await entry.load();
  // Same schema as the function that started the job: the helper trusts nothing it is handed.
  const p = v.safeParse(task.params, params);
  if (!p.success) {
    emit({ type: 'error', code: 'invalid_params', message: `invalid parameters for ${name}: ${describeValidation(p.issues).message}` });
    return 1;
  }

  const abort = new AbortController();
  const onSignal = (sig: string) => {
    if (abort.signal.aborted) process.exit(130);
    abort.abort(new Error(`received ${sig}`));
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  let lastStep: string | undefined;
  let highest = 0;
  let lastProgressAt = 0;
  let pendingProgress: HelperEvent | undefined;
  let progressTimer: NodeJS.Timeout | undefined;
  const flushProgress = () => {
    if (progressTimer) clearTimeout(progressTimer);
    progressTimer = undefined;
    if (pendingProgress) emit(pendingProgress);
    pendingProgress = undefined;
  };
  const ctx: TaskContext = {
    config,
    configPath: config_path,
    jobId: job_id,
    actor,
    ledger,
    progress(step, percent, message, params) {
      // one bar per job: nested work (a safety backup, an update's rollback) reports in sub-ranges
      // that may start below what was shown; the bar never goes back
      highest = Math.max(highest, Math.max(0, Math.min(100, percent)));
      const e: HelperEvent = { type: 'progress', step, percent: highest, message, ...(params ? { params } : {}) };
      // Every step change goes out at once; within a step at most ~4 events a second (the latest
      // wins), so a per-file progress callback cannot flood the ledger.
      if (step !== lastStep || Date.now() - lastProgressAt >= PROGRESS_INTERVAL_MS) {
        flushProgress();
        lastProgressAt = Date.now();
        emit(e);
      } else {
        pendingProgress = e;
        progressTimer ??= setTimeout(() => {
          progressTimer = undefined;
          lastProgressAt = Date.now();
          flushProgress();
        }, PROGRESS_INTERVAL_MS - (Date.now() - lastProgressAt));
      }
      lastStep = step;
      faultPoint(step, flushProgress);
    },
    log(level, message) {
      flushProgress();
      emit({ type: 'log', level, message });
    },
    signal: abort.signal,
    now: () => new Date(),
  };

  try {
    const out = await task.run(ctx, p.output).finally(() => {
      flushProgress();
      // before the result goes out: the runner may stream the new archive at once
      try {
        const caller = sudoCaller();
        if (caller && ledger) handOverStorage(ownStorageDir(getSettings(ledger, config.paths.storage).backup_storage_path), caller);
      } catch (e) {
        ctx.log('warn', `could not hand the storage dir to the runner's user: ${errorMessage(e)}`);
      }
    });
    if (isOutcome(out)) emit({ type: 'result', status: out.status, result: out.result ?? null });
    else emit({ type: 'result', status: 'succeeded', result: out ?? null });
    return 0;
  } catch (e) {
    if (e instanceof TaskError) {
      emit({
        type: 'error',
        code: e.code,
        message: renderTaskError(e),
        step: e.step ?? lastStep,
        ...(e.changed !== undefined ? { changed: e.changed } : {}),
        ...(e.details !== undefined ? { details: e.details } : {}),
      });
    } else {
      emit({ type: 'error', code: 'task_failed', message: errorMessage(e), ...(lastStep ? { step: lastStep } : {}) });
    }
    return 1;
  }
}

/**
 * Lowers every thread of this process to HELPER_NICE (never raises one): on Linux a nice value is per
 * thread, so the threads V8 and libuv already started need their own; the workers and children made
 * later inherit it from the thread that makes them.
 */
function lowerPriority(): void {
  let threads = [0];
  try {
    threads = readdirSync('/proc/self/task').map(Number);
  } catch {
    /* no /proc: the call on 0 covers the process */
  }
  for (const t of threads) {
    try {
      if (getPriority(t) < HELPER_NICE) setPriority(t, HELPER_NICE);
    } catch {
      /* a thread that ended meanwhile */
    }
  }
}

/** Runs this process as the helper over `tasks`, then exits it. */
export function runHelper(tasks: TaskLookup): void {
  lowerPriority();
  process.stdout.on('error', () => {
    detached = true;
  });
  process.stderr.on('error', () => {});
  // A closed terminal must not cut a restore in half.
  process.on('SIGHUP', () => {});
  main(tasks).then(
    (code) => exit(code),
    (e) => {
      emit({ type: 'error', code: 'helper_failed', message: errorMessage(e) });
      exit(1);
    },
  );
}
