// What a task is: a named, schema-validated unit of privileged work that the single-use helper runs
// exactly once. Tasks live beside their routes under functions/; the entry points hand the platform
// a TaskLookup over their registry, so runtime/ never imports one.
import type * as v from 'valibot';
import type { KeeperConfig } from './config.ts';
import type { Ledger } from '../state/ledger.ts';
import type { Actor } from '../state/jobs.ts';

export type { Actor };

export type ProgressParams = Record<string, string | number | boolean | null>;

export interface TaskContext {
  config: KeeperConfig;
  configPath: string;
  jobId: string;
  actor: Actor;
  /** the ledger, opened by the helper itself (it may outlive the runner) */
  ledger: Ledger;
  /** report progress: a stable step key, 0-100, an English message and its parameters */
  progress(step: string, percent: number, message: string, params?: ProgressParams): void;
  log(level: 'info' | 'warn' | 'error', message: string): void;
  signal: AbortSignal;
  now(): Date;
}

/** What a task may return when it wants a job status other than succeeded. */
export interface TaskOutcome<R> {
  status: 'succeeded' | 'rolled_back';
  result: R;
}

export interface TaskDef<S extends v.GenericSchema = v.GenericSchema, R = unknown> {
  name: string;
  params: S;
  run(ctx: TaskContext, params: v.InferOutput<S>): Promise<R | TaskOutcome<R>>;
}

/**
 * A registry entry: what the runner needs to start a job, without the task's code, which only the
 * helper that runs it loads (a process then holds one task's dependencies, not every task's).
 */
export interface TaskEntry {
  /** maintenance tasks (backup, restore, update, rollback) hold the ledger lock: one at a time */
  maintenance: boolean;
  load(): Promise<TaskDef>;
}

/** Finds a task by name; undefined for a name the registry does not hold. */
export type TaskLookup = (name: string) => TaskEntry | undefined;

export function defineTask<S extends v.GenericSchema, R>(def: TaskDef<S, R>): TaskDef<S, R> {
  return def;
}

export function isOutcome<R>(x: unknown): x is TaskOutcome<R> {
  return typeof x === 'object' && x !== null && 'status' in x && 'result' in x &&
    ((x as { status: unknown }).status === 'succeeded' || (x as { status: unknown }).status === 'rolled_back');
}

/**
 * The one error type of tasks and operations: a stable code, the step it happened at, details for the
 * job's error JSON, whether the live install was changed (false: "nothing was changed" is rendered once,
 * at the edge; undefined: the task changes nothing anyway) and the underlying error as `cause`.
 */
export class TaskError extends Error {
  readonly changed: boolean | undefined;
  constructor(
    readonly code: string,
    message: string,
    readonly step?: string,
    readonly details?: unknown,
    opts: { changed?: boolean; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TaskError';
    this.changed = opts.changed;
  }
}

/** The message a user reads: the error's own, plus "nothing was changed" when that is known. */
export function renderTaskError(e: TaskError): string {
  return e.changed === false ? `${e.message}; nothing was changed` : e.message;
}
