// The scheduler's own state in the ledger (settings key _schedule_state): the occurrence it armed,
// so a run missed while the runner was down is found at the next start.
import * as v from 'valibot';
import type { Ledger } from './ledger.ts';

const KEY = '_schedule_state';

const ScheduleStateSchema = v.object({
  /** enabled|day|time|timezone the armed occurrence was computed for */
  signature: v.string(),
  /** the occurrence waited for (ISO); null when disabled */
  next_due: v.nullable(v.string()),
  armed_at: v.string(),
  last_due: v.optional(v.nullable(v.string()), null),
  last_job_id: v.optional(v.nullable(v.string()), null),
  /** last timezone read from phpBorg's database, used while it is unreachable */
  db_timezone: v.optional(v.nullable(v.string()), null),
  /** the due whose deferral (busy / failure to start) was already audited */
  deferred_due: v.optional(v.nullable(v.string()), null),
});
export type ScheduleState = v.InferOutput<typeof ScheduleStateSchema>;

/** The persisted state; null when there is none or it does not parse (the scheduler re-arms). */
export function readScheduleState(ledger: Ledger): ScheduleState | null {
  const row = ledger.prepare('SELECT value_json FROM settings WHERE key = ?').get(KEY) as { value_json: string } | undefined;
  if (!row) return null;
  try {
    const r = v.safeParse(ScheduleStateSchema, JSON.parse(row.value_json));
    return r.success ? r.output : null;
  } catch {
    return null;
  }
}

export function writeScheduleState(ledger: Ledger, state: ScheduleState, now: Date): void {
  ledger
    .prepare(
      'INSERT INTO settings (key, value_json, updated_at) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET value_json = excluded.value_json, updated_at = excluded.updated_at',
    )
    .run(KEY, JSON.stringify(state), now.toISOString());
}
