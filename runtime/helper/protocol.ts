// The helper protocol, defined once: what the runtime writes on the helper's stdin (one JSON
// object), and the NDJSON events the helper writes on stdout. Parameters travel only here, never
// in argv or the environment, because they may hold secrets.
import * as v from 'valibot';

export const HelperRequestSchema = v.strictObject({
  /** task name, a key of the task registry the helper was built with */
  task: v.pipe(v.string(), v.regex(/^[a-z]+(\.[a-z_]+)+$/)),
  /** validated again by the helper with the task's own schema */
  params: v.unknown(),
  job_id: v.string(),
  /** the keeper configuration file the runtime was started with */
  config_path: v.string(),
  /** who asked: phpBorg user id and name, or the CLI's system user */
  actor: v.strictObject({ id: v.nullable(v.number()), name: v.string() }),
});
export type HelperRequest = v.InferOutput<typeof HelperRequestSchema>;

const StepKey = v.pipe(v.string(), v.regex(/^[a-z][a-z0-9_.]*$/, 'a step key is lower_snake.dotted'));

export const HelperEventSchema = v.variant('type', [
  v.strictObject({
    type: v.literal('progress'),
    /** stable key a UI or mail translates, e.g. "backup.dump" */
    step: StepKey,
    percent: v.pipe(v.number(), v.minValue(0), v.maxValue(100)),
    /** English message */
    message: v.string(),
    params: v.optional(v.record(v.string(), v.union([v.string(), v.number(), v.boolean(), v.null()]))),
  }),
  v.strictObject({ type: v.literal('log'), level: v.picklist(['info', 'warn', 'error']), message: v.string() }),
  /** final success; status lets a task end as rolled_back */
  v.strictObject({
    type: v.literal('result'),
    status: v.optional(v.picklist(['succeeded', 'rolled_back']), 'succeeded'),
    result: v.unknown(),
  }),
  v.strictObject({
    type: v.literal('error'),
    code: v.string(),
    message: v.string(),
    step: v.optional(v.string()),
    /** whether the live install was changed (absent: the task changes nothing, or it is not known) */
    changed: v.optional(v.boolean()),
    /** a task may attach what it knows (e.g. rollback outcome) */
    details: v.optional(v.unknown()),
  }),
]);
export type HelperEvent = v.InferOutput<typeof HelperEventSchema>;
export type ProgressEvent = Extract<HelperEvent, { type: 'progress' }>;

export function encodeEvent(e: HelperEvent): string {
  return JSON.stringify(e) + '\n';
}

/** Parses one NDJSON line; throws a clear error for anything that is not a protocol event. */
export function decodeEvent(line: string): HelperEvent {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    throw new Error(`helper printed something that is not JSON: ${JSON.stringify(line.slice(0, 200))}`);
  }
  const r = v.safeParse(HelperEventSchema, json);
  if (!r.success) throw new Error(`helper printed an invalid event: ${r.issues[0].message} in ${line.slice(0, 200)}`);
  return r.output;
}
