// The maintenance job this browser started (or met with a 409), remembered so that a reload keeps
// showing its progress instead of losing it.
const KEY = 'keeper_active_job';

export interface ActiveJob {
  id: string;
  kind: string;
  /** e.g. the backup being restored, for the modal's title */
  ref?: string | number;
}

export function rememberJob(j: ActiveJob): void {
  try {
    localStorage.setItem(KEY, JSON.stringify(j));
  } catch {
    /* ignore */
  }
}

export function recalledJob(kind?: string): ActiveJob | null {
  try {
    const j = JSON.parse(localStorage.getItem(KEY) ?? 'null') as ActiveJob | null;
    if (!j || typeof j.id !== 'string') return null;
    return kind && j.kind !== kind ? null : j;
  } catch {
    return null;
  }
}

export function forgetJob(id: string): void {
  try {
    if (recalledJob()?.id === id) localStorage.removeItem(KEY);
  } catch {
    /* ignore */
  }
}

/** The running job's id from a 409 body ({running_job_id} or {job_id}). */
export function runningJobId(body: Record<string, unknown>): string | null {
  for (const k of ['running_job_id', 'job_id', 'runningJobId', 'job']) {
    const v = body[k];
    if (typeof v === 'string' && v) return v;
  }
  return null;
}
