// A scratch file for per-entry state that grows with the archive (the writer's manifest, a reader's
// entry log): appended to through a small buffer, read back in order or at an offset. Memory stays
// flat whatever the number of entries; the file is unlinked the moment it is opened, so it has no name
// to leave behind and its contents vanish with the process, even when the process is killed.
import { randomBytes } from 'node:crypto';
import { closeSync, constants as C, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BUFFER = 256 << 10;

/** Opens an unlinked scratch file in the first of `dirs` that takes one (the system temp dir last). */
function openUnlinked(dirs: (string | undefined)[]): number {
  let last: unknown = null;
  for (const dir of [...dirs, tmpdir()]) {
    if (!dir) continue;
    // the storage dir's crash clean-up (removePartials) knows this name, should the unlink never run
    const path = join(dir, `.phpborg-backup-spill-${process.pid}-${randomBytes(6).toString('hex')}.partial`);
    try {
      const fd = openSync(path, C.O_RDWR | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
      unlinkSync(path);
      return fd;
    } catch (e) {
      last = e;
    }
  }
  throw new Error('no directory takes a scratch file', { cause: last });
}

export class Spill {
  private fd: number | null = null;
  private buf = Buffer.allocUnsafeSlow(BUFFER);
  private used = 0;
  /** bytes already in the file; the rest are in `buf` */
  private flushed = 0;

  /** `dirs`: where the file may go, best first; nothing touches the disk until BUFFER bytes are held */
  constructor(private dirs: (string | undefined)[] = []) {}

  get length(): number {
    return this.flushed + this.used;
  }

  /** Appends `bytes`; returns their offset. */
  append(bytes: Buffer | Uint8Array): number {
    const at = this.length;
    if (bytes.length > BUFFER - this.used) this.flush();
    if (bytes.length > BUFFER) this.writeOut(bytes);
    else {
      this.buf.set(bytes, this.used);
      this.used += bytes.length;
    }
    return at;
  }

  /** Appends `text` as UTF-8; returns its offset. */
  appendText(text: string): number {
    const need = Buffer.byteLength(text);
    if (need > BUFFER - this.used) this.flush();
    if (need > BUFFER) return this.append(Buffer.from(text));
    const at = this.length;
    this.used += this.buf.write(text, this.used);
    return at;
  }

  private writeOut(bytes: Uint8Array): void {
    this.fd ??= openUnlinked(this.dirs);
    let off = 0;
    while (off < bytes.length) off += writeSync(this.fd, bytes, off, bytes.length - off, this.flushed + off);
    this.flushed += bytes.length;
  }

  private flush(): void {
    if (this.used === 0) return;
    this.writeOut(this.buf.subarray(0, this.used));
    this.used = 0;
  }

  /** Copies `into.length` bytes from `pos` into `into` (fewer at the end); returns how many. */
  read(pos: number, into: Buffer): number {
    const len = Math.min(into.length, this.length - pos);
    let n = 0;
    if (pos < this.flushed) {
      const want = Math.min(len, this.flushed - pos);
      while (n < want) {
        const got = readSync(this.fd!, into, n, want - n, pos + n);
        if (got === 0) throw new Error('the scratch file ended early');
        n += got;
      }
    }
    if (n < len) this.buf.copy(into, n, pos + n - this.flushed, pos + len - this.flushed);
    return len;
  }

  /** Everything appended, in order, through one reused buffer: consume each chunk before the next. */
  *chunks(): Generator<Buffer> {
    const into = Buffer.allocUnsafeSlow(BUFFER);
    for (let pos = 0; pos < this.length; ) {
      const n = this.read(pos, into);
      pos += n;
      yield into.subarray(0, n);
    }
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
