// The operation runner: runs a plan's steps in order and does, once for every operation, what each
// used to write out for itself — progress sub-ranges, step records, the write-ahead journal, the
// undo stack, the cleanup of temporaries and one result shape.
import { removeTree } from '../remove-tree.ts';
import type { TaskContext } from '../task.ts';
import { TaskError } from '../task.ts';
import { errorMessage } from '../error-message.ts';
import {
  addTemp,
  closeOperation,
  dropTemp,
  openOperation,
  partsRestored,
  setSafetyPoint,
  setTarget,
  stepEnded,
  stepStarted,
  unitsStarted,
  unitsStopping,
  type InstallPart,
  type TempPath,
} from '../../state/operations.ts';
import { emergencyCommand } from './emergency.ts';
import { dropScratchDatabase } from '../mariadb-admin.ts';
import type { OperationContext, OperationResult, Plan, Step, StepRecord } from './types.ts';

/**
 * The journal entry work outside a plan records in: the current operation's when `ctx` is one (a
 * safety backup inside a restore), else a new entry of `kind` that the caller closes with `close`.
 */
export function joinOperation(ctx: TaskContext, kind: string): { id: number; close(): void } {
  const inside = (ctx as Partial<OperationContext>).journalId;
  if (inside !== undefined) return { id: inside, close: () => {} };
  const id = openOperation(ctx.ledger, { jobId: ctx.jobId, kind });
  return { id, close: () => closeOperation(ctx.ledger, id, 'closed') };
}

export interface RunOptions {
  /** journal into this entry (a plan nested in another operation) instead of opening and closing one */
  journalId?: number;
}

/**
 * Runs `plan`. Never throws for a failing step: the result says succeeded, rolled_back (a step failed
 * and every undo put the install back) or failed (with `changed`, and when changed the install's
 * state and the emergency command).
 */
export async function runOperation<S>(ctx: TaskContext, plan: Plan<S>, o: RunOptions = {}): Promise<OperationResult> {
  const { ledger } = ctx;
  const own = o.journalId === undefined;
  const journalId = o.journalId ?? openOperation(ledger, { jobId: ctx.jobId, kind: plan.kind });
  const s = plan.state;
  const steps = plan.steps;
  const [lo, hi] = plan.percent ?? [0, 100];
  const totalWeight = steps.reduce((n, st) => n + st.weight, 0) || 1;
  const pct = (weightDone: number) => lo + ((hi - lo) * weightDone) / totalWeight;

  const records: StepRecord[] = [];
  const undos: Step<S>[] = [];
  const touched = new Set<InstallPart>();
  const temps = new Map<string, TempPath>();
  let current = { key: plan.rollbackKey, from: lo, span: 0 };

  const op: OperationContext = {
    ...ctx,
    journalId,
    step(fraction, message, params) {
      ctx.progress(current.key, current.from + current.span * Math.max(0, Math.min(1, fraction)), message, params);
    },
    stepRange: () => [current.from, current.from + current.span],
    ownTemp(path, t = {}) {
      const entry: TempPath = { path, ...(t.aside ? { aside: true } : {}), ...(t.database ? { database: true } : {}) };
      temps.set(path, entry);
      addTemp(ledger, journalId, [entry]);
    },
    releaseTemp(path) {
      temps.delete(path);
      dropTemp(ledger, journalId, [path]);
    },
    setSafetyPoint: (safety) => setSafetyPoint(ledger, journalId, safety),
    setTarget: (target) => setTarget(ledger, journalId, target),
    unitsStopping: (units) => unitsStopping(ledger, journalId, units),
    unitsStarted: () => unitsStarted(ledger, journalId),
    partsRestored(parts) {
      for (const p of parts) touched.delete(p);
      partsRestored(ledger, journalId, parts);
    },
  };

  const removeTemps = async (keepAsides: boolean) => {
    for (const t of [...temps.values()].reverse()) {
      if (keepAsides && t.aside) continue;
      try {
        if (t.database) await dropScratchDatabase(ctx.config, t.path);
        else await removeTree(t.path);
        op.releaseTemp(t.path);
      } catch (e) {
        ctx.log('warn', `could not remove ${t.path}: ${errorMessage(e)}`);
      }
    }
  };

  const timed = async (key: string, fn: () => Promise<void>, undo = false): Promise<unknown> => {
    const t0 = performance.now();
    try {
      await fn();
      records.push({ step: key, ok: true, ms: Math.round(performance.now() - t0), ...(undo ? { undo: true as const } : {}) });
      return null;
    } catch (e) {
      records.push({ step: key, ok: false, ms: Math.round(performance.now() - t0), error: errorMessage(e), ...(undo ? { undo: true as const } : {}) });
      return e ?? new Error('failed');
    }
  };

  // ── forward ──
  let weightDone = 0;
  let failure: { step: string; error: unknown } | null = null;
  for (const st of steps) {
    // decided when the step is reached: an earlier step may settle it (e.g. nothing to update)
    if (st.when && !st.when(s)) {
      weightDone += st.weight;
      continue;
    }
    const span = pct(weightDone + st.weight) - pct(weightDone);
    current = { key: st.key, from: pct(weightDone), span };
    // write-ahead: the journal knows the step and what it may touch before it acts
    stepStarted(ledger, journalId, st.key, st.touches ?? []);
    for (const p of st.touches ?? []) touched.add(p);
    const undoFirst = st.undoFirst ?? !!st.touches?.length;
    if (undoFirst && st.undo) undos.push(st);
    ctx.progress(st.key, current.from, typeof st.message === 'function' ? st.message(s) : st.message);
    const error = await timed(st.key, () => st.run(op, s));
    if (error) {
      stepEnded(ledger, journalId, st.key, 'failed');
      const as = st.completes && error instanceof TaskError && error.step === st.completes ? st.completes : st.key;
      failure = { step: as, error };
      break;
    }
    stepEnded(ledger, journalId, st.key, 'done');
    if (!undoFirst && st.undo) undos.push(st);
    weightDone += st.weight;
  }

  if (!failure) {
    await removeTemps(false);
    if (own) closeOperation(ledger, journalId, 'closed');
    return { operation_id: journalId, outcome: 'succeeded', changed: touched.size > 0, message: `${plan.kind} succeeded`, steps: records, touched: [...touched] };
  }

  // ── backward: the undo stack, newest first ──
  const { step: failedStep, error } = failure;
  const code = error instanceof TaskError ? error.code : `${plan.kind}_failed`;
  const reason = `${plan.kind} failed at ${failedStep}: ${errorMessage(error)}`;
  const wasTouched = touched.size > 0;
  current = { key: plan.rollbackKey, from: pct(weightDone), span: hi - pct(weightDone) };
  if (wasTouched) ctx.log('error', reason);
  let undoError: unknown = null;
  for (const st of [...undos].reverse()) {
    ctx.progress(plan.rollbackKey, current.from, `Undoing ${st.key}`, { step: st.key, reason });
    undoError = await timed(st.key, () => st.undo!(op, s), true);
    if (undoError) break;
    stepEnded(ledger, journalId, st.key, 'undone');
    op.partsRestored(st.touches ?? []);
  }
  if (!undoError && wasTouched && plan.afterRollback) {
    undoError = await timed(plan.rollbackKey, () => plan.afterRollback!(op, s), true);
  }

  const details = error instanceof TaskError ? error.details : undefined;
  const base = { operation_id: journalId, steps: records, failed_step: failedStep, error: { code, message: errorMessage(error), ...(details !== undefined ? { details } : {}) } };
  if (!undoError) {
    await removeTemps(false);
    if (own) closeOperation(ledger, journalId, 'closed');
    if (!wasTouched) {
      return { ...base, outcome: 'failed', changed: false, message: reason, touched: [] };
    }
    const to = plan.safetyName?.(s);
    return { ...base, outcome: 'rolled_back', changed: false, message: `${reason}; rolled back${to ? ` to ${to}` : ''}`, touched: [] };
  }

  // the way back failed too: keep the units stopped, keep what was moved aside, say where things stand
  await removeTemps(true);
  const left = [...touched];
  const state = plan.describeState?.(s, left) ?? `State: changed: ${left.join(', ') || 'unknown'}.`;
  const target = plan.emergencyTarget?.(s) ?? null;
  const command = target ? emergencyCommand(ctx, target) : undefined;
  const to = plan.safetyName?.(s);
  const message =
    `${reason}; the rollback${to ? ` to ${to}` : ''} failed too: ${errorMessage(undoError)}. ${state}` + (command ? ` Run: ${command}` : '');
  if (own) closeOperation(ledger, journalId, 'inconsistent', message);
  return { ...base, outcome: 'failed', changed: true, message, install_state: state, ...(command ? { emergency_command: command } : {}), touched: left };
}

/**
 * The edge between an operation and a task: a result the job ends with (succeeded or rolled_back),
 * or the one error shape for a failure (changed: false renders "nothing was changed" once).
 */
export function operationOutcome<R extends OperationResult>(r: R, fallbackCode: string): R | { status: 'rolled_back'; result: R } {
  if (r.outcome === 'succeeded') return r;
  if (r.outcome === 'rolled_back') return { status: 'rolled_back', result: r };
  throw operationError(r, fallbackCode);
}

/** A failed operation as the one error shape: a refusal keeps its own code and details; a failure that
 * left the install changed carries the whole result (install state, emergency command). */
export function operationError<R extends OperationResult>(r: R, fallbackCode: string): TaskError {
  if (r.changed) return new TaskError(fallbackCode, r.message, r.failed_step, r, { changed: true });
  return new TaskError(r.error?.code ?? fallbackCode, r.message, r.failed_step, r.error?.details, { changed: false });
}
