// The write-ahead operation journal. Every operation that changes the live install (backup's window,
// restore, update, rollback, emergency and bare-metal restore) records here, BEFORE each step acts,
// which step it is in, which parts of the install it touches, which temporaries it owns and which
// units it stopped. When its process dies, recovery reads this and finishes the job: clean up and
// start the units, roll back to the safety point, or keep the install stopped and say so.
import type { Ledger } from './ledger.ts';

/** The parts of an install an operation can change. */
export type InstallPart = 'database' | 'code' | 'config' | 'keys';

/** open: its process is (or was) working; closed: it ended and cleaned up; inconsistent: it left a
 * half-changed install with no way back (units kept stopped until an operation fixes it). */
export type OperationStatus = 'open' | 'closed' | 'inconsistent';

export interface SafetyPoint {
  /** catalog id, when catalogued */
  id: number | null;
  file: string;
  filename: string;
}

/** A path the operation owns. `aside` marks the previous install moved aside: kept when the install is
 * left inconsistent (it is what a person repairs it from); scratch paths (staging, dumps, defaults files)
 * are always removed. */
export interface TempPath {
  path: string;
  aside?: boolean;
  /** `path` is the name of a scratch database on phpBorg's MariaDB (the restore drill's), dropped as the admin */
  database?: boolean;
}

export interface StepMark {
  key: string;
  state: 'started' | 'done' | 'failed' | 'undone';
}

export interface OperationEntry {
  id: number;
  job_id: string | null;
  kind: string;
  /** the process doing the work (a helper, the CLI or the emergency script) */
  pid: number | null;
  status: OperationStatus;
  /** the step started last */
  step: string | null;
  steps: StepMark[];
  safety: SafetyPoint | null;
  /** the archive being restored (the emergency command's target when there is no safety point) */
  target: SafetyPoint | null;
  touched: InstallPart[];
  temp: TempPath[];
  units: string[];
  units_stopped: boolean;
  /** recovery attempts so far */
  recoveries: number;
  note: string | null;
  opened_at: string;
  closed_at: string | null;
}

interface Raw {
  id: number;
  job_id: string | null;
  kind: string;
  pid: number | null;
  status: OperationStatus;
  step: string | null;
  steps_json: string;
  safety_json: string | null;
  target_json: string | null;
  touched_json: string;
  temp_json: string;
  units_json: string;
  units_stopped: number;
  recoveries: number;
  note: string | null;
  opened_at: string;
  closed_at: string | null;
}

const fromRaw = (r: Raw): OperationEntry => ({
  id: r.id,
  job_id: r.job_id,
  kind: r.kind,
  pid: r.pid,
  status: r.status,
  step: r.step,
  steps: JSON.parse(r.steps_json) as StepMark[],
  safety: r.safety_json ? (JSON.parse(r.safety_json) as SafetyPoint) : null,
  target: r.target_json ? (JSON.parse(r.target_json) as SafetyPoint) : null,
  touched: JSON.parse(r.touched_json) as InstallPart[],
  temp: (JSON.parse(r.temp_json) as (TempPath | string)[]).map((t) => (typeof t === 'string' ? { path: t } : t)),
  units: JSON.parse(r.units_json) as string[],
  units_stopped: r.units_stopped === 1,
  recoveries: r.recoveries,
  note: r.note,
  opened_at: r.opened_at,
  closed_at: r.closed_at,
});

export function openOperation(ledger: Ledger, o: { jobId: string | null; kind: string; pid?: number }, now = new Date()): number {
  const r = ledger
    .prepare("INSERT INTO operations (job_id, kind, pid, status, opened_at) VALUES (?, ?, ?, 'open', ?)")
    .run(o.jobId, o.kind, o.pid ?? process.pid, now.toISOString());
  return Number(r.lastInsertRowid);
}

export function getOperation(ledger: Ledger, id: number): OperationEntry | null {
  const r = ledger.prepare('SELECT * FROM operations WHERE id = ?').get(id) as Raw | undefined;
  return r ? fromRaw(r) : null;
}

/** Applies `change` to one entry inside a transaction (read, modify, write). */
function update(ledger: Ledger, id: number, change: (e: OperationEntry) => void): void {
  ledger
    .transaction(() => {
      const e = getOperation(ledger, id);
      if (!e) return;
      change(e);
      ledger
        .prepare(
          `UPDATE operations SET pid = ?, status = ?, step = ?, steps_json = ?, safety_json = ?, target_json = ?, touched_json = ?, temp_json = ?,
             units_json = ?, units_stopped = ?, recoveries = ?, note = ?, closed_at = ? WHERE id = ?`,
        )
        .run(
          e.pid,
          e.status,
          e.step,
          JSON.stringify(e.steps),
          e.safety ? JSON.stringify(e.safety) : null,
          e.target ? JSON.stringify(e.target) : null,
          JSON.stringify(e.touched),
          JSON.stringify(e.temp),
          JSON.stringify(e.units),
          e.units_stopped ? 1 : 0,
          e.recoveries,
          e.note,
          e.closed_at,
          id,
        );
    })
    .immediate();
}

const mark = (e: OperationEntry, key: string, state: StepMark['state']) => {
  const m = e.steps.find((s) => s.key === key);
  if (m) m.state = state;
  else e.steps.push({ key, state });
};

/** Before a step acts: it is the current step, and the parts it may change count as touched. */
export function stepStarted(ledger: Ledger, id: number, key: string, touches: readonly InstallPart[] = []): void {
  update(ledger, id, (e) => {
    e.step = key;
    mark(e, key, 'started');
    e.touched = [...new Set([...e.touched, ...touches])];
  });
}

export function stepEnded(ledger: Ledger, id: number, key: string, state: 'done' | 'failed' | 'undone'): void {
  update(ledger, id, (e) => mark(e, key, state));
}

/** Once a step's change is undone exactly, its parts no longer count as touched. */
export function partsRestored(ledger: Ledger, id: number, parts: readonly InstallPart[]): void {
  update(ledger, id, (e) => (e.touched = e.touched.filter((p) => !parts.includes(p))));
}

export function setSafetyPoint(ledger: Ledger, id: number, safety: SafetyPoint): void {
  update(ledger, id, (e) => (e.safety = safety));
}

export function setTarget(ledger: Ledger, id: number, target: SafetyPoint): void {
  update(ledger, id, (e) => (e.target = target));
}

/** Temporaries (absolute paths) the operation owns: removed by recovery if its process dies. */
export function addTemp(ledger: Ledger, id: number, paths: readonly TempPath[]): void {
  update(ledger, id, (e) => (e.temp = [...e.temp.filter((t) => !paths.some((p) => p.path === t.path)), ...paths]));
}

export function dropTemp(ledger: Ledger, id: number, paths: readonly string[]): void {
  update(ledger, id, (e) => (e.temp = e.temp.filter((t) => !paths.includes(t.path))));
}

/** Call BEFORE stopping the units. */
export function unitsStopping(ledger: Ledger, id: number, units: readonly string[]): void {
  update(ledger, id, (e) => {
    e.units = [...new Set([...e.units, ...units])];
    e.units_stopped = true;
  });
}

export function unitsStarted(ledger: Ledger, id: number): void {
  update(ledger, id, (e) => (e.units_stopped = false));
}

/** Recovery takes the entry over: the recovering process is now its owner. */
export function claimOperation(ledger: Ledger, id: number, pid: number): void {
  update(ledger, id, (e) => {
    e.pid = pid;
    e.recoveries += 1;
  });
}

export function closeOperation(ledger: Ledger, id: number, status: 'closed' | 'inconsistent', note: string | null = null, now = new Date()): void {
  update(ledger, id, (e) => {
    e.status = status;
    e.note = note;
    e.closed_at = now.toISOString();
  });
}

/** Entries still open (their process may be alive or dead), oldest first. */
export function openOperations(ledger: Ledger): OperationEntry[] {
  return (ledger.prepare("SELECT * FROM operations WHERE status = 'open' ORDER BY id").all() as Raw[]).map(fromRaw);
}

/** Every entry of a job, oldest first. */
export function operationsOfJob(ledger: Ledger, jobId: string): OperationEntry[] {
  return (ledger.prepare('SELECT * FROM operations WHERE job_id = ? ORDER BY id').all(jobId) as Raw[]).map(fromRaw);
}

/** The newest entry that left the install inconsistent, while no operation has fixed it. */
export function inconsistentOperation(ledger: Ledger): OperationEntry | null {
  const r = ledger.prepare("SELECT * FROM operations WHERE status = 'inconsistent' ORDER BY id DESC LIMIT 1").get() as Raw | undefined;
  return r ? fromRaw(r) : null;
}

/** A whole-install restore succeeded: earlier inconsistent entries are settled by it. */
export function settleInconsistent(ledger: Ledger, byId: number, now = new Date()): void {
  ledger
    .prepare("UPDATE operations SET status = 'closed', note = COALESCE(note, '') || ?, closed_at = COALESCE(closed_at, ?) WHERE status = 'inconsistent' AND id < ?")
    .run(` (settled by operation #${byId})`, now.toISOString(), byId);
}
