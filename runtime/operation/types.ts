// What an operation is: a plan of ordered steps that change the live install one by one, each with a
// stable key, its share of the progress bar, the parts of the install it touches, and the undo that
// reverses it. The runner (run.ts) journals, times, reports and undoes; plans only say what to do.
import type { ProgressParams, TaskContext } from '../task.ts';
import type { InstallPart, SafetyPoint } from '../../state/operations.ts';

export type { InstallPart, SafetyPoint };

/** What a step gets: the task's context plus the journal of this operation. */
export interface OperationContext extends TaskContext {
  /** the journal entry of this operation */
  readonly journalId: number;
  /** progress inside the current step: `fraction` 0..1 of its share of the bar */
  step(fraction: number, message: string, params?: ProgressParams): void;
  /** the current step's share of the job's 0–100 (for work that reports its own progress inside it) */
  stepRange(): [number, number];
  /**
   * Journals a temporary path BEFORE it is created; whatever is still owned at the end is removed.
   * `aside`: the previous install moved aside, kept if the install is left inconsistent.
   * `database`: `path` names a scratch database (runtime/mariadb-admin.ts), dropped instead of removed.
   */
  ownTemp(path: string, o?: { aside?: boolean; database?: boolean }): void;
  /** the path is gone or handed over: no longer removed by the runner or recovery */
  releaseTemp(path: string): void;
  /** the archive this operation rolls back to, once it exists */
  setSafetyPoint(safety: SafetyPoint): void;
  /** the archive this operation restores (the way out named when it cannot be undone) */
  setTarget(target: SafetyPoint): void;
  /** call BEFORE stopping units */
  unitsStopping(units: readonly string[]): void;
  unitsStarted(): void;
  /** parts an undo put back exactly: they no longer count as touched */
  partsRestored(parts: readonly InstallPart[]): void;
}

export interface Step<S> {
  /** stable key, e.g. "restore.database": progress events, journal, fault table, UI translations */
  key: string;
  /** its share of the operation's progress bar (relative to the other steps' weights) */
  weight: number;
  /** the English message shown when it starts */
  message: string | ((s: S) => string);
  /** the parts of the live install it may change (journaled as touched before it runs) */
  touches?: readonly InstallPart[];
  /** push the undo before `run` (default: when it touches the install), so a change that failed
   * half-way is reversed too */
  undoFirst?: boolean;
  /** false when the step is reached: skipped (no journal mark, no record) */
  when?: (s: S) => boolean;
  /** the key of an earlier step whose checks this one finishes: a TaskError naming that key as its
   * step is reported as that step's failure (the journal still marks this one failed) */
  completes?: string;
  run(op: OperationContext, s: S): Promise<void>;
  /** Reverses `run`. Pushed on the undo stack once `run` succeeds (before it, see `undoFirst`). */
  undo?(op: OperationContext, s: S): Promise<void>;
}

export interface Plan<S> {
  /** restore, update, rollback, emergency, bare_metal, recovery … */
  kind: string;
  steps: Step<S>[];
  state: S;
  /** the part of the job's 0–100 this plan reports in (a plan nested in another reports inside it) */
  percent?: [number, number];
  /** step key under which the rollback reports */
  rollbackKey: string;
  /** after every undo succeeded: prove the install works again (health); a throw means failed */
  afterRollback?(op: OperationContext, s: S): Promise<void>;
  /** what the install looks like when the operation failed with it touched */
  describeState?(s: S, touched: readonly InstallPart[]): string;
  /** which archive the emergency command should restore when the operation failed */
  emergencyTarget?(s: S): { id: number | null; file: string } | null;
  /** the archive's name, for messages ("rolled back to …") */
  safetyName?(s: S): string | null;
}

export interface StepRecord {
  step: string;
  ok: boolean;
  ms: number;
  error?: string;
  /** set on undo records */
  undo?: true;
}

export type OperationOutcome = 'succeeded' | 'rolled_back' | 'failed';

/** One shape for success and failure. */
export interface OperationResult {
  outcome: OperationOutcome;
  /** the journal entry (state/operations.ts) */
  operation_id: number;
  /** whether the live install differs from before (false: untouched, or put back exactly) */
  changed: boolean;
  /** one English sentence */
  message: string;
  steps: StepRecord[];
  failed_step?: string;
  /** the failing step's error; `details` are what a TaskError carried (e.g. the files that block) */
  error?: { code: string; message: string; details?: unknown };
  /** when failed with the install changed: what it looks like now, and the way out */
  install_state?: string;
  emergency_command?: string;
  /** the parts of the install left changed */
  touched: InstallPart[];
}

