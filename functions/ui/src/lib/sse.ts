// Server-sent events over fetch: EventSource cannot send the Authorization header. Parses the
// text/event-stream format (id/event/data fields, blank line ends an event), resumes with
// Last-Event-ID when the connection drops before the stream's `end` event.
import { apiUrl, authHeaders, failure } from './api.ts';

export interface SseMessage {
  id: string | null;
  event: string;
  data: string;
}

export interface SseOptions {
  onMessage: (m: SseMessage) => void;
  /** the stream's `end` event (its data: the final job) */
  onEnd: (m: SseMessage) => void;
  onError: (e: Error) => void;
  /** stop reconnecting after this many consecutive failures */
  maxRetries?: number;
  /** sent with every request (the setup wizard's X-Setup-Token) */
  headers?: Record<string, string>;
}

/** Parses a chunked event stream; returns the events completed by this chunk. */
export class SseParser {
  private buf = '';
  private id: string | null = null;
  private event = '';
  private data: string[] = [];
  lastId: string | null = null;

  push(chunk: string): SseMessage[] {
    this.buf += chunk;
    const out: SseMessage[] = [];
    let nl: number;
    while ((nl = this.buf.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buf.slice(0, nl);
      const len = this.buf.startsWith('\r\n', nl) ? 2 : 1;
      this.buf = this.buf.slice(nl + len);
      if (line === '') {
        if (this.data.length > 0 || this.event) {
          out.push({ id: this.id, event: this.event || 'message', data: this.data.join('\n') });
        }
        if (this.id !== null) this.lastId = this.id;
        this.event = '';
        this.data = [];
        continue;
      }
      if (line.startsWith(':')) continue; // comment / keep-alive
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') this.data.push(value);
      else if (field === 'event') this.event = value;
      else if (field === 'id') this.id = value;
    }
    return out;
  }
}

/** Follows an SSE endpoint until `end`; returns a function that stops it. */
export function followEvents(path: string, opts: SseOptions): () => void {
  const ctrl = new AbortController();
  let stopped = false;
  let lastId: string | null = null;
  let failures = 0;
  const maxRetries = opts.maxRetries ?? 20;

  const run = async (): Promise<void> => {
    let end: SseMessage | null = null;
    while (!stopped && !end) {
      try {
        const headers: Record<string, string> = { Accept: 'text/event-stream', ...authHeaders(), ...(opts.headers ?? {}) };
        if (lastId !== null) headers['Last-Event-ID'] = lastId;
        const res = await fetch(apiUrl(path), { headers, signal: ctrl.signal, cache: 'no-store' });
        if (!res.ok) {
          const err = await failure(res);
          // auth and not-found are final; anything else may be a restarting runner
          if (res.status === 401 || res.status === 403 || res.status === 404) throw Object.assign(err, { final: true });
          throw err;
        }
        if (!res.body) throw new Error('the event stream has no body');
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        const parser = new SseParser();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const m of parser.push(value)) {
            failures = 0; // the stream works: a later drop gets a fresh set of retries
            if (m.id !== null) lastId = m.id;
            if (m.event === 'end') {
              end = m;
              break;
            }
            opts.onMessage(m);
          }
          if (end) {
            void reader.cancel().catch(() => undefined);
            break;
          }
        }
        if (end || stopped) break;
        // closed without `end` (the runner restarting?): reconnect and resume after the last id
        throw new Error('the event stream closed before the job ended');
      } catch (e) {
        if (stopped) return;
        if ((e as { final?: boolean }).final || ++failures > maxRetries) {
          opts.onError(e as Error);
          return;
        }
        await new Promise((r) => setTimeout(r, Math.min(5000, 500 * failures)));
      }
    }
    if (!stopped && end) opts.onEnd(end);
  };
  void run();
  return () => {
    stopped = true;
    ctrl.abort();
  };
}
