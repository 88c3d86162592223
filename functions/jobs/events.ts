// GET /api/jobs/:id/events — SSE: replays the job's recorded events (id: <seq>), resumes after
// Last-Event-ID, follows live ones, and ends with `event: end` carrying the final job.
// Live events come from the in-process Jobs binding; a job run by the CLI is followed by polling.
import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { AppEnv } from '../../runtime/bindings.ts';
import { HttpError } from '../../runtime/errors.ts';
import type { Ledger } from '../../state/ledger.ts';
import { getJob, isFinal, listEvents, type JobView } from '../../state/jobs.ts';

const POLL_MS = 1000;
const PING_MS = 15_000;

interface Read {
  job: JobView;
  events: { id: string; event: string; data: string }[];
}

// Every stream of a job wakes at once on each of its events (a tab each): they share one read of the
// ledger and one serialization per event instead of one each. A read lives until the next event of
// its job, and never past the current turn of the event loop (jobs of another process write unseen).
const reads = new Map<string, Map<number, Read>>();

function readJob(ledger: Ledger, id: string, after: number): Read {
  let byAfter = reads.get(id);
  const hit = byAfter?.get(after);
  if (hit) return hit;
  // status first: every event of a finished job is recorded before it is marked finished
  const job = getJob(ledger, id)!;
  const events = listEvents(ledger, id, after).map((e) => ({ id: String(e.seq), event: e.type, data: JSON.stringify({ seq: e.seq, at: e.at, ...e.data }) }));
  const r = { job, events };
  if (!byAfter) {
    reads.set(id, (byAfter = new Map()));
    setImmediate(() => forget(id));
  }
  byAfter.set(after, r);
  return r;
}

const forget = (id: string) => void reads.delete(id);

export function jobEventsHandler(c: Context<AppEnv>): Response {
  const id = c.req.param('id') ?? '';
  const { ledger, jobs } = c.env;
  if (!getJob(ledger, id)) throw new HttpError(404, 'not_found', `no job ${id}`);
  const resume = c.req.header('last-event-id') ?? c.req.query('after') ?? '0';
  let after = /^\d+$/.test(resume) ? Number(resume) : 0;

  return streamSSE(c, async (stream) => {
    let wake = () => {};
    let closed = false;
    const unsub = jobs.subscribe(id, () => {
      forget(id);
      wake();
    });
    stream.onAbort(() => {
      closed = true;
      wake();
    });
    let lastWrite = Date.now();
    try {
      while (!closed) {
        const { job, events } = readJob(ledger, id, after);
        for (const e of events) {
          await stream.writeSSE(e);
          after = Number(e.id);
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
