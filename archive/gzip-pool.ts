// Parallel gzip: each block becomes one gzip member, compressed by a small pool of worker threads and
// handed back in order. Concatenated members are a single valid gzip stream (RFC 1952 §2.2) that
// gunzip, tar -z, pigz and node:zlib all read.
// Workers rather than zlib's async API: each worker holds a queue of blocks and goes from one to the
// next by itself, so compression keeps both cores busy even when the main thread waits for the CPU
// (a loaded machine); with the async API every block handoff needed the main thread first.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

// Plain CommonJS evaluated in the worker: no loader, no TypeScript, nothing of ours to import.
const WORKER_SOURCE = `(() => {
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
// a script, not a module: once --expose-gc is on, a global gc exists, so no top-level names here
let collect = null;
try { require('node:v8').setFlagsFromString('--expose-gc'); collect = require('node:vm').runInNewContext('gc'); } catch {}
parentPort.on('message', ({ id, buf, len, level, out }) => {
  try {
    // one output chunk as large as the recycled buffer: zlib neither grows a list of chunks nor joins them
    const gz = zlib.gzipSync(Buffer.from(buf, 0, len), { level, memLevel: 9, chunkSize: out.byteLength });
    // copied into the main thread's recycled output buffer: each thread frees only what it allocated
    if (gz.length > out.byteLength) out = new ArrayBuffer(gz.length);
    Buffer.from(out).set(gz);
    parentPort.postMessage({ id, out, outLen: gz.length, buf }, [out, buf]);
  } catch (e) {
    parentPort.postMessage({ id, error: String((e && e.message) || e), buf, out }, [buf, out]);
  }
  // this isolate allocates almost no JS objects, so V8 would let dead zlib buffers pile up: each block's
  // go at once (a scavenge of a near-empty heap costs next to nothing)
  if (collect) collect({ type: 'minor' });
});
})();
`;

interface Reply {
  id: number;
  out: ArrayBuffer;
  outLen?: number;
  error?: string;
  buf: ArrayBuffer;
}

interface Pending {
  promise: Promise<Reply>;
  done: boolean;
}

export class GzipPool {
  private workers: Worker[];
  private waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private queue: Pending[] = [];
  private free: Buffer[] = [];
  private freeOut: ArrayBuffer[] = [];
  /** the member last returned by next(), recycled at the following call */
  private lent: ArrayBuffer | null = null;
  private nextId = 0;
  private failed: Error | null = null;
  private closing = false;
  readonly maxInFlight: number;

  constructor(
    readonly blockSize: number,
    private level: number,
    threads = Math.max(1, Math.min(4, availableParallelism())),
  ) {
    // two blocks per worker: one compressing, one queued, so it never waits for the main thread between
    // blocks; a third added only memory, not speed
    this.maxInFlight = threads * 2;
    this.workers = Array.from({ length: threads }, () => {
      const w = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], stdout: false, stderr: false });
      w.on('message', (r: Reply) => {
        const h = this.waiting.get(r.id);
        this.waiting.delete(r.id);
        h?.resolve(r);
      });
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => !this.closing && this.fail(new Error(`gzip worker exited with code ${code}`)));
      return w;
    });
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const h of this.waiting.values()) h.reject(e);
    this.waiting.clear();
  }

  /** A block-sized buffer to fill (recycled from finished blocks); owns its whole ArrayBuffer. */
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.blockSize);
  }

  /** Sends `block[0..len)` to a worker; ownership moves with it (the caller must not touch `block`). */
  submit(block: Buffer, len: number): void {
    if (this.failed) throw this.failed;
    const id = this.nextId++;
    const promise = new Promise<Reply>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    const item: Pending = { promise, done: false };
    promise.then(() => (item.done = true), () => (item.done = true));
    this.queue.push(item);
    const buf = block.buffer as ArrayBuffer;
    // deflate never grows a block by more than ~0.1% + a few bytes
    const out = this.freeOut.pop() ?? new ArrayBuffer(this.blockSize + (this.blockSize >> 6) + 1024);
    this.workers[id % this.workers.length].postMessage({ id, buf, len, level: this.level, out }, [buf, out]);
  }

  get inFlight(): number {
    return this.queue.length;
  }

  /** Whether the oldest block is compressed already (so taking it will not wait). */
  get headReady(): boolean {
    return this.queue.length > 0 && this.queue[0].done;
  }

  /**
   * The oldest block's gzip member, in submission order. The returned bytes are valid until the next
   * call (their buffer is recycled then): consume them synchronously.
   */
  async next(): Promise<Buffer> {
    const item = this.queue.shift();
    if (!item) throw new Error('no block in flight');
    const r = await item.promise;
    if (this.lent) this.freeOut.push(this.lent);
    this.lent = null;
    this.free.push(Buffer.from(r.buf));
    if (r.error !== undefined) {
      this.freeOut.push(r.out);
      throw new Error(`gzip failed: ${r.error}`);
    }
    this.lent = r.out;
    return Buffer.from(r.out, 0, r.outLen);
  }

  async close(): Promise<void> {
    this.closing = true;
    this.queue = [];
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
