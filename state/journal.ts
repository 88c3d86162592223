// The maintenance journal: what a helper has stopped and which temporary files it holds, written
// BEFORE it acts, so that if it dies the runner can undo it at its next start (runtime/recover.ts).
// Lifecycle of an entry: open → units_stopped → units_started → closed (or recovered).
import type { Ledger } from './ledger.ts';

export type JournalState = 'open' | 'units_stopped' | 'units_started' | 'closed' | 'recovered';

export interface JournalEntry {
  id: number;
  job_id: string | null;
  units: string[];
  temp_files: string[];
  state: JournalState;
  opened_at: string;
  closed_at: string | null;
}

interface Raw {
  id: number;
  job_id: string | null;
  units_json: string;
  temp_files_json: string;
  state: JournalState;
  opened_at: string;
  closed_at: string | null;
}
const fromRaw = (r: Raw): JournalEntry => ({
  id: r.id,
  job_id: r.job_id,
  units: JSON.parse(r.units_json) as string[],
  temp_files: JSON.parse(r.temp_files_json) as string[],
  state: r.state,
  opened_at: r.opened_at,
  closed_at: r.closed_at,
});

export function openJournal(ledger: Ledger, e: { jobId: string | null; units?: string[]; tempFiles?: string[] }, now = new Date()): number {
  const r = ledger
    .prepare("INSERT INTO maintenance_journal (job_id, units_json, temp_files_json, state, opened_at) VALUES (?, ?, ?, 'open', ?)")
    .run(e.jobId, JSON.stringify(e.units ?? []), JSON.stringify(e.tempFiles ?? []), now.toISOString());
  return Number(r.lastInsertRowid);
}

export function getJournal(ledger: Ledger, id: number): JournalEntry | null {
  const r = ledger.prepare('SELECT * FROM maintenance_journal WHERE id = ?').get(id) as Raw | undefined;
  return r ? fromRaw(r) : null;
}

/** Records the units about to be stopped (state units_stopped) — call before stopping them. */
export function journalUnitsStopping(ledger: Ledger, id: number, units: string[]): void {
  ledger.prepare("UPDATE maintenance_journal SET units_json = ?, state = 'units_stopped' WHERE id = ?").run(JSON.stringify(units), id);
}

export function journalUnitsStarted(ledger: Ledger, id: number): void {
  ledger.prepare("UPDATE maintenance_journal SET state = 'units_started' WHERE id = ? AND state IN ('open', 'units_stopped')").run(id);
}

/** Adds temporary files (absolute paths) to remove if the helper dies. */
export function journalTempFiles(ledger: Ledger, id: number, files: string[]): void {
  ledger.transaction(() => {
    const cur = getJournal(ledger, id);
    if (!cur) return;
    const all = [...new Set([...cur.temp_files, ...files])];
    ledger.prepare('UPDATE maintenance_journal SET temp_files_json = ? WHERE id = ?').run(JSON.stringify(all), id);
  })();
}

export function closeJournal(ledger: Ledger, id: number, state: 'closed' | 'recovered' = 'closed', now = new Date()): void {
  ledger.prepare('UPDATE maintenance_journal SET state = ?, closed_at = ? WHERE id = ?').run(state, now.toISOString(), id);
}

/** Entries not closed yet, oldest first. */
export function openJournalEntries(ledger: Ledger): JournalEntry[] {
  return (
    ledger.prepare("SELECT * FROM maintenance_journal WHERE state NOT IN ('closed', 'recovered') ORDER BY id").all() as Raw[]
  ).map(fromRaw);
}
