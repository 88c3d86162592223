// A job followed live: its SSE stream feeds percent, step and message, and its `end` event carries
// the final job (status, result, error). A dropped stream resumes with Last-Event-ID (sse.ts).
import { reactive } from 'vue';
import type { JobError, JobStatus, JobView } from '../../../../state/jobs.ts';
import { get } from './api.ts';
import { followEvents } from './sse.ts';

export type { JobError, JobStatus, JobView };

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

/** the server's FINAL_STATUSES (state/jobs.ts is not bundled: types only) */
export const FINAL: readonly JobStatus[] = ['succeeded', 'failed', 'rolled_back', 'interrupted'];

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
    const e = { ...payload, ...data };
    const text = (x: unknown) => (typeof x === 'string' ? x : undefined);
    job.error = {
      code: text(e.code) ?? job.error?.code ?? 'error',
      message: text(e.message) ?? job.error?.message ?? '',
      step: text(e.step) ?? job.error?.step,
      details: e.details ?? job.error?.details,
    };
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
    // a step reported again after another one (the update's pre-checks resume after the fetch)
    // stays one line: it runs again where it was first listed
    const seen = job.steps.find((s) => s.key === group);
    if (last && last.key === group) {
      last.message = message || last.message;
      last.params = params;
    } else if (seen) {
      if (last && last.state === 'running') last.state = 'done';
      seen.state = 'running';
      seen.message = message || seen.message;
      seen.params = params;
    } else {
      if (last && last.state === 'running') last.state = 'done';
      job.steps.push({ key: group, message, params, state: 'running' });
    }
  } else if (message) job.message = message;
  if (job.status === 'queued') job.status = 'running';
}

/** GET /api/jobs/:id: the job row and its log (e.g. whether a remembered job still runs). */
export function fetchJob(id: string): Promise<JobView & { log: string }> {
  return get<JobView & { log: string }>(`api/jobs/${encodeURIComponent(id)}`);
}

/** Applies the final job of the stream's `end` event. */
export function applyEnd(job: LiveJob, end: JobView): void {
  job.status = end.status;
  job.result = asObject(end.result) ?? job.result;
  if (end.error) job.error = { ...(job.error ?? {}), ...end.error };
  if (end.status === 'succeeded') {
    job.percent = 100;
    for (const s of job.steps) s.state = 'done';
  } else {
    const cur = job.steps.find((s) => s.state === 'running');
    if (cur) cur.state = 'failed';
  }
  job.done = true;
}

/**
 * Follows a job until it ends. `onDone` runs once with the final job.
 * Returns the reactive job and a stop function (for unmount). `path`/`headers`: another events route.
 */
export function followJob(
  id: string,
  onDone?: (job: LiveJob) => void,
  o: { path?: string; headers?: Record<string, string> } = {},
): { job: LiveJob; stop: () => void } {
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
  // the setup wizard follows its job on its own route, with its token instead of a session
  const stopStream = followEvents(o.path ?? `api/jobs/${encodeURIComponent(id)}/events`, {
    headers: o.headers,
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
    onEnd: (m) => {
      applyEnd(job, JSON.parse(m.data) as JobView);
      onDone?.(job);
    },
    // retries exhausted, or auth / not found: the job's outcome is unknown, say why
    onError: (e) => {
      job.streamError = e.message;
    },
  });
  return { job, stop: stopStream };
}
