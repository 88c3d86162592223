// Every entry a reader has met, in archive order: its path and signature in a scratch file (spill.ts),
// and in memory only a hash table over the paths (~25 bytes an entry) and the folders (for the checks
// on an entry's parents). What a full pass must remember until manifest.json, the last entry, arrives
// stays small however many entries the archive holds.
import { randomInt } from 'node:crypto';
import type { EntryType } from './manifest-check.ts';
import { Spill } from './spill.ts';

const TYPES: EntryType[] = ['file', 'dir', 'symlink'];

export interface LoggedEntry {
  path: string;
  /** see signature() in manifest-check.ts */
  sig: string;
}

// a seeded 64-bit hash (cyrb53's mixing): paths an archive chose cannot be made to collide on purpose
let h1 = 0;
let h2 = 0;
function hashPath(s: string, seed: number): void {
  let a = 0xdeadbeef ^ seed;
  let b = 0x41c6ce57 ^ seed;
  for (let i = 0; i < s.length; i++) {
    const ch = s.charCodeAt(i);
    a = Math.imul(a ^ ch, 2654435761);
    b = Math.imul(b ^ ch, 1597334677);
  }
  a = Math.imul(a ^ (a >>> 16), 2246822507) ^ Math.imul(b ^ (b >>> 13), 3266489909);
  b = Math.imul(b ^ (b >>> 16), 2246822507) ^ Math.imul(a ^ (a >>> 13), 3266489909);
  h1 = a >>> 0;
  h2 = b >>> 0;
}

const grow = <T extends Uint8Array | Uint32Array | Float64Array>(a: T, n: number, make: (n: number) => T): T => {
  if (n < a.length) return a;
  const b = make(a.length * 2);
  b.set(a);
  return b;
};

export class EntryLog {
  private spill: Spill;
  private seed = randomInt(0x7fffffff);
  /** per entry, by index */
  private hi = new Uint32Array(1024);
  private lo = new Uint32Array(1024);
  private kinds = new Uint8Array(1024);
  /** where each entry's record starts in the spill; -1 until it is sealed */
  private at = new Float64Array(1024);
  /** open addressing: index + 1, 0 = empty */
  private table = new Int32Array(4096);
  /** the entry added last, until seal() writes its record */
  private pending: string | null = null;
  private scratch = Buffer.allocUnsafeSlow(4096);
  count = 0;
  /** folders that are entries (the parents check needs them at every entry, without the disk) */
  readonly dirs = new Set<string>();

  constructor(spillDirs: (string | undefined)[] = []) {
    this.spill = new Spill(spillDirs);
  }

  /** The index of the entry at `path`, or -1. */
  find(path: string): number {
    hashPath(path, this.seed);
    const mask = this.table.length - 1;
    for (let s = h1 & mask; ; s = (s + 1) & mask) {
      const slot = this.table[s];
      if (slot === 0) return -1;
      const i = slot - 1;
      if (this.hi[i] === h1 && this.lo[i] === h2 && this.pathOf(i) === path) return i;
    }
  }

  typeOf(i: number): EntryType {
    return TYPES[this.kinds[i]];
  }

  /** Adds an entry (its signature comes with seal()); the caller has checked it is not there yet. */
  add(path: string, type: EntryType): number {
    if (this.pending !== null) throw new Error('the previous entry was not sealed');
    const i = this.count;
    this.hi = grow(this.hi, i, (n) => new Uint32Array(n));
    this.lo = grow(this.lo, i, (n) => new Uint32Array(n));
    this.kinds = grow(this.kinds, i, (n) => new Uint8Array(n));
    this.at = grow(this.at, i, (n) => new Float64Array(n));
    hashPath(path, this.seed);
    this.hi[i] = h1;
    this.lo[i] = h2;
    this.kinds[i] = TYPES.indexOf(type);
    this.at[i] = -1;
    if ((i + 1) * 2 > this.table.length) this.rehash(this.table.length * 2);
    this.place(i);
    this.count++;
    if (type === 'dir') this.dirs.add(path);
    this.pending = path;
    return i;
  }

  /** Records the last added entry's signature. */
  seal(sig: string): void {
    const path = this.pending;
    if (path === null) throw new Error('no entry to seal');
    const text = `${path}\0${sig}`;
    const len = Buffer.byteLength(text);
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32LE(len);
    this.at[this.count - 1] = this.spill.append(head);
    this.spill.appendText(text);
    this.pending = null;
  }

  /** An entry's path and signature. */
  get(i: number): LoggedEntry {
    if (i === this.count - 1 && this.pending !== null) return { path: this.pending, sig: '' };
    const pos = this.at[i];
    this.spill.read(pos, this.scratch.subarray(0, 4));
    const len = this.scratch.readUInt32LE(0);
    if (len > this.scratch.length) this.scratch = Buffer.allocUnsafeSlow(len);
    this.spill.read(pos + 4, this.scratch.subarray(0, len));
    return split(this.scratch.toString('utf8', 0, len));
  }

  /** Every sealed entry in archive order (read through one buffer). */
  *entries(): Generator<LoggedEntry> {
    let carry: Buffer | null = null;
    for (const chunk of this.spill.chunks()) {
      const buf: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
      let p = 0;
      while (buf.length - p >= 4) {
        const len = buf.readUInt32LE(p);
        if (buf.length - p - 4 < len) break;
        yield split(buf.toString('utf8', p + 4, p + 4 + len));
        p += 4 + len;
      }
      // the chunk's buffer is reused for the next one: keep a copy of an unfinished record
      carry = p < buf.length ? Buffer.from(buf.subarray(p)) : null;
    }
  }

  close(): void {
    this.spill.close();
  }

  private pathOf(i: number): string {
    return this.get(i).path;
  }

  private place(i: number): void {
    const mask = this.table.length - 1;
    let s = this.hi[i] & mask;
    while (this.table[s] !== 0) s = (s + 1) & mask;
    this.table[s] = i + 1;
  }

  private rehash(size: number): void {
    this.table = new Int32Array(size);
    for (let i = 0; i < this.count; i++) this.place(i);
  }
}

function split(text: string): LoggedEntry {
  const cut = text.indexOf('\0');
  return { path: text.slice(0, cut), sig: text.slice(cut + 1) };
}
