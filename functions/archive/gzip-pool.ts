// Parallel gzip: each block becomes one gzip member, compressed by a small pool of worker threads and
// handed back in order. Concatenated members are a single valid gzip stream (RFC 1952 §2.2) that
// gunzip, tar -z, pigz and node:zlib all read. Workers (not zlib's async API) because a fresh zlib
// stream per block costs the main thread ~3 ms of setup and GC; in a worker it costs nothing we wait on.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

// Plain CommonJS evaluated in the worker: no loader, no TypeScript, nothing of ours to import.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
parentPort.on('message', ({ id, buf, len, level }) => {
  try {
    // one output chunk big enough for any block: the result is a view of a buffer we can transfer as is,
    // so the worker keeps no garbage (its heap barely allocates, so it would rarely collect)
    const out = zlib.gzipSync(Buffer.from(buf, 0, len), { level, memLevel: 9, chunkSize: len + (len >> 3) + 1024 });
    const own = out.buffer.byteLength >= 65536;
    const ab = own ? out.buffer : out.buffer.slice(out.byteOffset, out.byteOffset + out.length);
    const off = own ? out.byteOffset : 0;
    parentPort.postMessage({ id, out: ab, off, len: out.length, buf }, [ab, buf]);
  } catch (e) {
    parentPort.postMessage({ id, error: String(e && e.message || e), buf }, [buf]);
  }
});
`;

interface Reply {
  id: number;
  out?: ArrayBuffer;
  off?: number;
  len?: number;
  error?: string;
  buf: ArrayBuffer;
}

interface Pending {
  id: number;
  promise: Promise<Reply>;
  done: boolean;
}

export class GzipPool {
  private workers: Worker[];
  private waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private queue: Pending[] = [];
  private free: ArrayBuffer[] = [];
  private nextId = 0;
  private failed: Error | null = null;
  readonly maxInFlight: number;

  constructor(
    readonly blockSize: number,
    private level: number,
    threads = Math.max(1, Math.min(4, availableParallelism())),
  ) {
    this.maxInFlight = threads * 2;
    this.workers = Array.from({ length: threads }, () => {
      const w = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], stdout: false, stderr: false });
      w.on('message', (r: Reply) => {
        const h = this.waiting.get(r.id);
        this.waiting.delete(r.id);
        h?.resolve(r);
      });
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => code !== 0 && this.fail(new Error(`gzip worker exited with code ${code}`)));
      return w;
    });
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const h of this.waiting.values()) h.reject(e);
    this.waiting.clear();
  }

  /** A block-sized buffer to fill (recycled from finished blocks). */
  take(): ArrayBuffer {
    return this.free.pop() ?? new ArrayBuffer(this.blockSize);
  }

  /** Sends a filled block (ownership moves to the worker); returns how many are in flight. */
  submit(buf: ArrayBuffer, len: number): number {
    if (this.failed) throw this.failed;
    const id = this.nextId++;
    const promise = new Promise<Reply>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    const item: Pending = { id, promise, done: false };
    promise.then(() => (item.done = true), () => (item.done = true));
    this.queue.push(item);
    this.workers[id % this.workers.length].postMessage({ id, buf, len, level: this.level }, [buf]);
    return this.queue.length;
  }

  get inFlight(): number {
    return this.queue.length;
  }

  /** Whether the oldest block is compressed already (so taking it will not wait). */
  get headReady(): boolean {
    return this.queue.length > 0 && this.queue[0].done;
  }

  /** The oldest block's gzip member, in submission order. */
  async next(): Promise<Buffer> {
    const item = this.queue.shift();
    if (!item) throw new Error('no block in flight');
    const r = await item.promise;
    this.free.push(r.buf);
    if (r.error !== undefined) throw new Error(`gzip failed: ${r.error}`);
    return Buffer.from(r.out!, r.off, r.len);
  }

  async close(): Promise<void> {
    this.queue = [];
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
