// GET /api/jobs/:id/events — SSE: replays the job's recorded events (id: <seq>), resumes after
// Last-Event-ID, follows live ones, and ends with `event: end` carrying the final job.
// Live events come from the in-process Jobs binding; a job run by the CLI is followed by polling.
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { AppEnv } from '../../runtime/bindings.ts';
import { HttpError } from '../../runtime/errors.ts';
import { getJob, isFinal, listEvents } from '../../state/jobs.ts';

const POLL_MS = 1000;
const PING_MS = 15_000;

export function jobEventsHandler(c: Context<AppEnv>): Response {
  const id = c.req.param('id') ?? '';
  const { ledger, jobs } = c.env;
  if (!getJob(ledger, id)) throw new HttpError(404, 'not_found', `no job ${id}`);
  const resume = c.req.header('last-event-id') ?? c.req.query('after') ?? '0';
  let after = /^\d+$/.test(resume) ? Number(resume) : 0;

  return streamSSE(c, async (stream) => {
    let wake = () => {};
    let closed = false;
    const unsub = jobs.subscribe(id, () => wake());
    stream.onAbort(() => {
      closed = true;
      wake();
    });
    let lastWrite = Date.now();
    try {
      while (!closed) {
        // status first: every event of a finished job is recorded before it is marked finished
        const job = getJob(ledger, id)!;
        for (const e of listEvents(ledger, id, after)) {
          await stream.writeSSE({ id: String(e.seq), event: e.type, data: JSON.stringify({ seq: e.seq, at: e.at, ...e.data }) });
          after = e.seq;
          lastWrite = Date.now();
        }
        if (isFinal(job.status)) {
          await stream.writeSSE({ event: 'end', data: JSON.stringify(job) });
          break;
        }
        if (Date.now() - lastWrite > PING_MS) {
          await stream.write(': ping\n\n');
          lastWrite = Date.now();
        }
        await new Promise<void>((r) => {
          const t = setTimeout(r, POLL_MS);
          wake = () => (clearTimeout(t), r());
        });
      }
    } finally {
      unsub();
    }
  });
}
