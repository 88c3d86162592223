// Parallel gzip: each block becomes one gzip member, compressed on the libuv thread pool by a few
// long-lived zlib engines, and handed back in order. Concatenated members are a single valid gzip
// stream (RFC 1952 §2.2) that gunzip, tar -z, pigz and node:zlib all read.
// Engines are reused (flush with Z_FINISH ends a member, reset() starts the next): a fresh zlib
// stream per block would cost setup time and leave ~1 MiB of native garbage per block behind.
import { availableParallelism } from 'node:os';
import { constants as Z, createGzip, type Gzip } from 'node:zlib';

interface Pending {
  promise: Promise<Buffer>;
  done: boolean;
  block: Buffer;
  engine: Gzip;
}

export class GzipPool {
  private idle: Gzip[];
  private all: Gzip[];
  private queue: Pending[] = [];
  private free: Buffer[] = [];
  readonly maxInFlight: number;

  constructor(
    readonly blockSize: number,
    level: number,
    /** one more engine than cores: one compresses while the main thread refills the next block */
    engines = Math.max(2, Math.min(4, availableParallelism() + 1)),
  ) {
    this.all = Array.from({ length: engines }, () => createGzip({ level, memLevel: 9, chunkSize: 256 << 10 }));
    this.idle = [...this.all];
    this.maxInFlight = engines;
  }

  /** A block-sized buffer to fill (recycled from finished blocks). */
  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.blockSize);
  }

  /** Starts compressing `block[0..len)`; the caller must not touch `block` afterwards. Needs an idle engine. */
  submit(block: Buffer, len: number): void {
    const engine = this.idle.pop();
    if (!engine) throw new Error('no idle gzip engine: take the oldest result first');
    const item: Pending = { promise: member(engine, block.subarray(0, len)), done: false, block, engine };
    item.promise.then(() => (item.done = true), () => (item.done = true));
    this.queue.push(item);
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
    try {
      return await item.promise;
    } finally {
      this.free.push(item.block);
      this.idle.push(item.engine);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.queue.map((q) => q.promise));
    this.queue = [];
    for (const e of this.all) e.close();
  }
}

/** One complete gzip member for `data` from a reusable engine. */
function member(engine: Gzip, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const onData = (c: Buffer) => out.push(c);
    const onError = (e: Error) => {
      engine.off('data', onData);
      reject(e);
    };
    engine.on('data', onData);
    engine.once('error', onError);
    engine.write(data);
    engine.flush(Z.Z_FINISH, () => {
      engine.off('data', onData);
      engine.off('error', onError);
      (engine as unknown as { reset(): void }).reset();
      resolve(out.length === 1 ? out[0] : Buffer.concat(out));
    });
  });
}
