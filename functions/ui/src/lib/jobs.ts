// A job followed live: its SSE stream feeds percent, step and message; when the stream ends the
// job row (GET /api/jobs/:id) gives the final status, result and error.
import { reactive } from 'vue';
import { get } from './api.ts';
import { followEvents } from './sse.ts';
import { errorMessage } from '../../../../runtime/error-message.ts';

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'rolled_back' | 'interrupted';

export interface JobError {
  code?: string;
  message?: string;
  step?: string;
  details?: Record<string, unknown> | null;
  [k: string]: unknown;
}

export interface JobRow {
  id: string;
  type?: string;
  status: JobStatus;
  percent?: number;
  step?: string | null;
  message?: string | null;
  result?: Record<string, unknown> | null;
  error?: JobError | string | null;
  created_at?: string;
  started_at?: string | null;
  finished_at?: string | null;
}

export interface StepSeen {
  key: string;
  message: string;
  params: Record<string, unknown>;
  state: 'done' | 'running' | 'failed';
}

export interface LiveJob {
  id: string;
  status: JobStatus;
  percent: number;
  step: string;
  message: string;
  params: Record<string, unknown>;
  steps: StepSeen[];
  logs: string[];
  result: Record<string, unknown> | null;
  error: JobError | null;
  done: boolean;
  /** the stream itself failed (network, auth): not the job */
  streamError: string;
}

export const FINAL: JobStatus[] = ['succeeded', 'failed', 'rolled_back', 'interrupted'];

function asError(e: JobRow['error']): JobError | null {
  if (!e) return null;
  if (typeof e === 'string') {
    try {
      const j = JSON.parse(e) as unknown;
      if (j && typeof j === 'object') return j as JobError;
    } catch {
      /* plain text */
    }
    return { message: e };
  }
  return e;
}

function asObject(x: unknown): Record<string, unknown> | null {
  if (typeof x === 'string') {
    try {
      x = JSON.parse(x);
    } catch {
      return null;
    }
  }
  return x && typeof x === 'object' ? (x as Record<string, unknown>) : null;
}

/** Applies one event payload (progress / log / result / error) to the live job. */
export function applyEvent(job: LiveJob, event: string, payload: Record<string, unknown>): void {
  const type = typeof payload.type === 'string' ? payload.type : event;
  const data = asObject(payload.data) ?? asObject(payload.data_json) ?? {};
  const step = typeof payload.step === 'string' ? payload.step : '';
  if (typeof payload.percent === 'number') {
    // the bar never goes back, and only the last step (or the job's end) fills it: a task that
    // reports a step's own 100% midway would otherwise show a finished bar that then stalls
    const last = step === '' || step.endsWith('.done');
    if (payload.percent < 100 || last) job.percent = Math.max(job.percent, Math.min(100, payload.percent));
  }
  const message = typeof payload.message === 'string' ? payload.message : '';
  const params = asObject(payload.params) ?? asObject(data.params) ?? {};
  if (type === 'log') {
    if (message) job.logs.push(message);
    return;
  }
  if (type === 'result') {
    job.result = asObject(payload.result) ?? asObject(data.result) ?? job.result;
    return;
  }
  if (type === 'error') {
    job.error = { ...(job.error ?? {}), ...payload, ...(data as JobError) } as JobError;
    const cur = job.steps.find((s) => s.state === 'running');
    if (cur) cur.state = 'failed';
    return;
  }
  if (typeof payload.status === 'string' && type === 'status') job.status = payload.status as JobStatus;
  if (step) {
    job.step = step;
    job.message = message || job.message;
    job.params = params;
    // sub-steps (restore.safety_backup.dump) stay under their step in the list
    const group = step.split('.').slice(0, 2).join('.');
    const last = job.steps[job.steps.length - 1];
    if (last && last.key === group) {
      last.message = message || last.message;
      last.params = params;
    } else {
      if (last && last.state === 'running') last.state = 'done';
      job.steps.push({ key: group, message, params, state: 'running' });
    }
  } else if (message) job.message = message;
  if (job.status === 'queued') job.status = 'running';
}

/** Reads GET /api/jobs/:id, whatever envelope it uses. */
export async function fetchJob(id: string): Promise<JobRow> {
  const raw = await get<Record<string, unknown>>(`api/jobs/${encodeURIComponent(id)}`);
  const row = (asObject(raw.job) ?? raw) as unknown as JobRow;
  return {
    ...row,
    result: asObject(row.result) ?? asObject((row as unknown as Record<string, unknown>).result_json),
    error: asError(row.error ?? ((row as unknown as Record<string, unknown>).error_json as string | null)),
  };
}

/**
 * Follows a job until it ends. `onDone` runs once with the final job.
 * Returns the reactive job and a stop function (for unmount).
 */
export function followJob(id: string, onDone?: (job: LiveJob) => void): { job: LiveJob; stop: () => void } {
  const job = reactive<LiveJob>({
    id,
    status: 'queued',
    percent: 0,
    step: '',
    message: '',
    params: {},
    steps: [],
    logs: [],
    result: null,
    error: null,
    done: false,
    streamError: '',
  });
  let stopped = false;
  const finish = async (): Promise<void> => {
    for (let attempt = 0; attempt < 40 && !stopped; attempt++) {
      try {
        const row = await fetchJob(id);
        if (FINAL.includes(row.status)) {
          job.status = row.status;
          job.result = (row.result as Record<string, unknown> | null) ?? job.result;
          const err = asError(row.error ?? null);
          if (err) job.error = { ...(job.error ?? {}), ...err };
          if (row.status === 'succeeded') {
            job.percent = 100;
            for (const s of job.steps) s.state = 'done';
          } else {
            const cur = job.steps.find((s) => s.state === 'running');
            if (cur) cur.state = 'failed';
          }
          job.done = true;
          onDone?.(job);
          return;
        }
        if (attempt === 0) {
          // stream closed early (runner restart?): follow again from where we were
          job.status = row.status;
        }
      } catch (e) {
        job.streamError = errorMessage(e);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  const stopStream = followEvents(`api/jobs/${encodeURIComponent(id)}/events`, {
    onMessage: (m) => {
      let payload: Record<string, unknown> = {};
      try {
        const j = JSON.parse(m.data) as unknown;
        if (j && typeof j === 'object') payload = j as Record<string, unknown>;
        else payload = { message: String(j) };
      } catch {
        payload = { message: m.data };
      }
      applyEvent(job, m.event, payload);
    },
    onEnd: () => void finish(),
    onError: (e) => {
      job.streamError = e.message;
      void finish();
    },
  });
  return {
    job,
    stop: () => {
      stopped = true;
      stopStream();
    },
  };
}
