// Checks manifest.json against the entries read, one listed entry at a time as its bytes stream in:
// never the document nor every entry as an object (for big installs that cost more than the rest of a
// restore), and every check and message is what parsing and validating the whole document would give.
import * as v from 'valibot';
import { ArchiveError } from './errors.ts';
import { ENTRY, GENERATOR, ManifestEntrySchema, ManifestSchema, type Manifest } from './format.ts';
import type { EntryLog, LoggedEntry } from './entry-log.ts';

export type EntryType = 'file' | 'dir' | 'symlink';

/**
 * What an entry must match in the manifest, as one compact string per entry: join() makes one flat
 * string, where a template literal may keep a tree of its pieces, several times larger.
 */
export const signature = (type: EntryType, size: number, mode: number, link: string | undefined, sha: string | undefined) =>
  [type, size, mode, link ?? '', sha ?? ''].join('\0');

const FIELDS = ['type', 'size', 'mode', 'link target', 'SHA-256'] as const;

// everything but the entries, validated as the whole schema would (same keys, same order)
const HeadSchema = v.object({ ...ManifestSchema.entries, entries: v.array(v.unknown()) });

export interface ManifestVerdict {
  root: string;
  /** bytes of the regular files listed */
  fileBytes: number;
  /** the first difference between the manifest and the archive, in the order a full comparison finds it */
  problem: ArchiveError | null;
}

const isWs = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

const notJson = () => new ArchiveError('corrupt', `${ENTRY.manifest} is not valid JSON`, ENTRY.manifest);
const schemaError = (path: string | null, message: string) =>
  new ArchiveError('layout', `${ENTRY.manifest} does not match format v1: ${path ?? '(root)'}: ${message}`, ENTRY.manifest);

/** Where the splitter is inside the top-level "entries" array. */
type ArrayState = 'first' | 'next' | 'struct' | 'scalar' | 'after';

/**
 * Checks manifest.json as its bytes arrive, against the entries read before it (an EntryLog): parses and
 * validates it (end() throws what a whole parse would: corrupt, not_keeper, layout), then compares it
 * with the entries. Comparison problems are returned, not thrown: they rank after the archive-wide
 * checks (see finalChecks). Only the structure is tracked byte by byte: the top-level "entries" array's
 * elements are cut out one at a time and each goes through JSON.parse, the rest of the document (the
 * skeleton, that array emptied) through JSON.parse at the end, so a document is accepted exactly when
 * JSON.parse would accept it whole. Memory: one element and the skeleton, whatever the entries' count.
 */
export class ManifestCheck {
  // the document outside the entries array
  private depth = 0;
  private inString = false;
  private escaped = false;
  private expectKey = false;
  /** bytes of the depth-1 key being read, null when none is (or it is too long to be "entries") */
  private keyBytes: number[] | null = null;
  private key: string | null = null;
  /** after `"entries":`, until the value's first byte says whether it is an array */
  private peek = false;
  private skeleton: Buffer[] = [];
  // the entries array
  private inArray = false;
  private at: ArrayState = 'first';
  private elem = Buffer.allocUnsafeSlow(4096);
  private elemLen = 0;
  private elemDepth = 0;
  private broken = false;
  // the comparison, over the last "entries" array met (JSON.parse keeps the last of duplicate keys)
  private index = 0;
  private matched: Uint8Array;
  private unmatched: number;
  private duplicate = false;
  private fileBytes = 0;
  private invalid: ArchiveError | null = null;
  private problem: ArchiveError | null = null;
  private seq: Generator<LoggedEntry>;
  private cursor = 0;
  private current: LoggedEntry | null = null;

  constructor(private log: EntryLog) {
    this.matched = new Uint8Array(log.count);
    this.unmatched = log.count;
    this.seq = log.entries();
  }

  write(chunk: Buffer): void {
    if (this.broken) return;
    // what of the chunk belongs to the skeleton starts at `from` (nothing while inside the array)
    let from = this.inArray ? chunk.length : 0;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (this.inArray) {
        const r = this.arrayByte(c);
        if (r === 'end') {
          this.inArray = false;
          // from its `]` on, the skeleton goes on
          from = i;
        } else if (r === 'bad') return void (this.broken = true);
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === 0x5c) this.escaped = true;
        else if (c === 0x22) {
          this.inString = false;
          if (this.keyBytes) {
            try {
              this.key = JSON.parse(`"${Buffer.from(this.keyBytes).toString('utf8')}"`) as string;
            } catch {
              return void (this.broken = true);
            }
            this.keyBytes = null;
          }
          continue;
        }
        if (this.keyBytes) {
          // a longer key cannot be "entries", even fully escaped; the skeleton's parse checks it
          if (this.keyBytes.length < 64) this.keyBytes.push(c);
          else (this.keyBytes = null), (this.key = null);
        }
        continue;
      }
      if (this.peek && !isWs(c)) {
        this.peek = false;
        // a value other than an array: the skeleton keeps it, the schema reports it
        if (c !== 0x5b) (this.key = null), this.resetEntries();
      }
      if (c === 0x22) {
        this.inString = true;
        if (this.depth === 1 && this.expectKey) (this.keyBytes = []), (this.expectKey = false);
      } else if (c === 0x7b || c === 0x5b) {
        if (this.depth === 0 && c === 0x7b) this.expectKey = true;
        if (this.depth === 1 && c === 0x5b && this.key === 'entries') {
          this.skeleton.push(Buffer.from(chunk.subarray(from, i + 1)));
          from = chunk.length;
          this.inArray = true;
          this.at = 'first';
          this.key = null;
          this.resetEntries();
          continue;
        }
        this.depth++;
      } else if (c === 0x7d || c === 0x5d) {
        this.depth--;
      } else if (c === 0x2c && this.depth === 1) {
        this.expectKey = true;
        this.key = null;
      } else if (c === 0x3a && this.depth === 1 && this.key === 'entries') {
        this.peek = true;
      }
    }
    if (from < chunk.length) this.skeleton.push(Buffer.from(chunk.subarray(from)));
  }

  /** One byte inside the entries array: 'end' at its `]`, 'bad' on a syntax error. */
  private arrayByte(c: number): 'more' | 'end' | 'bad' {
    switch (this.at) {
      case 'first':
      case 'next':
        if (isWs(c)) return 'more';
        if (c === 0x5d && this.at === 'first') return 'end';
        this.elemLen = 0;
        this.push(c);
        if (c === 0x7b || c === 0x5b) (this.at = 'struct'), (this.elemDepth = 1);
        else if (c === 0x22) (this.at = 'struct'), (this.elemDepth = 0), (this.inString = true);
        else if (c === 0x2c || c === 0x5d) return 'bad'; // an empty element
        else this.at = 'scalar';
        return 'more';
      case 'struct':
        this.push(c);
        if (this.inString) {
          if (this.escaped) this.escaped = false;
          else if (c === 0x5c) this.escaped = true;
          else if (c === 0x22) this.inString = false;
        } else if (c === 0x22) this.inString = true;
        else if (c === 0x7b || c === 0x5b) this.elemDepth++;
        else if (c === 0x7d || c === 0x5d) this.elemDepth--;
        if (!this.inString && this.elemDepth === 0) {
          this.at = 'after';
          return this.element() ? 'more' : 'bad';
        }
        return 'more';
      case 'scalar':
        if (!isWs(c) && c !== 0x2c && c !== 0x5d) return this.push(c), 'more';
        this.at = 'after';
        if (!this.element()) return 'bad';
        return this.arrayByte(c);
      case 'after':
        if (isWs(c)) return 'more';
        if (c === 0x5d) return 'end';
        if (c === 0x2c) return (this.at = 'next'), 'more';
        return 'bad';
    }
  }

  private push(c: number): void {
    if (this.elemLen === this.elem.length) {
      const bigger = Buffer.allocUnsafeSlow(this.elem.length * 2);
      this.elem.copy(bigger);
      this.elem = bigger;
    }
    this.elem[this.elemLen++] = c;
  }

  /** A new entries array (or a value that replaces one): the comparison starts over. */
  private resetEntries(): void {
    // nothing was compared since the last start (every element counts itself first)
    if (this.index === 0) return;
    this.index = 0;
    this.matched.fill(0);
    this.unmatched = this.log.count;
    this.duplicate = false;
    this.fileBytes = 0;
    this.invalid = null;
    this.problem = null;
    this.seq = this.log.entries();
    this.cursor = 0;
    this.current = null;
  }

  /** Checks one element of the entries array; false when it is not JSON. */
  private element(): boolean {
    let x: unknown;
    try {
      x = JSON.parse(this.elem.toString('utf8', 0, this.elemLen));
    } catch {
      return false;
    }
    const i = this.index++;
    if (this.invalid) return true;
    const r = v.safeParse(ManifestEntrySchema, x);
    if (!r.success) {
      const p = v.getDotPath(r.issues[0]);
      this.invalid = schemaError(`entries.${i}${p ? `.${p}` : ''}`, r.issues[0].message);
      return true;
    }
    if (this.problem) return true;
    const m = r.output;
    if (m.type === 'file') this.fileBytes += m.size;
    const found = this.locate(m.path);
    if (!found) {
      this.problem = new ArchiveError('manifest_mismatch', `${ENTRY.manifest} lists ${m.path}, which is missing from the archive`, m.path);
      return true;
    }
    if (this.matched[found.index]) this.duplicate = true;
    else (this.matched[found.index] = 1), this.unmatched--;
    const want = signature(m.type, m.size, m.mode, m.linkname, m.type === 'file' ? m.sha256 : undefined);
    if (found.sig !== want) {
      const a = found.sig.split('\0');
      const b = want.split('\0');
      const field = FIELDS[a.findIndex((s, k) => s !== b[k])] ?? 'entry';
      this.problem = new ArchiveError('manifest_mismatch', `${m.path}: ${field} differs from ${ENTRY.manifest}: the archive was altered or damaged`, m.path);
    }
    return true;
  }

  /**
   * The entry at `path`: read in archive order as long as the manifest follows it (a keeper manifest
   * always does), looked up by its path otherwise.
   */
  private locate(path: string): { index: number; sig: string } | null {
    this.current ??= this.advance();
    if (this.current && this.current.path === path) {
      const found = { index: this.cursor, sig: this.current.sig };
      this.current = null;
      this.cursor++;
      return found;
    }
    const index = this.log.find(path);
    if (index < 0) return null;
    const sig = this.log.get(index).sig;
    // back in step with the archive's order after a gap
    while (this.cursor <= index && this.current) this.current = (this.cursor++, this.advance());
    return { index, sig };
  }

  private advance(): LoggedEntry | null {
    const n = this.seq.next();
    return n.done ? null : n.value;
  }

  /** The verdict, once the whole document has been written. */
  end(): ManifestVerdict {
    if (this.broken || this.inArray || this.inString) throw notJson();
    let head: unknown;
    try {
      head = JSON.parse(Buffer.concat(this.skeleton).toString('utf8'));
    } catch {
      throw notJson();
    }
    if (typeof head !== 'object' || head === null || (head as { generator?: unknown }).generator !== GENERATOR) {
      throw new ArchiveError('not_keeper', `not a phpborg-keeper archive: ${ENTRY.manifest} was not written by ${GENERATOR}`, ENTRY.manifest);
    }
    const h = v.safeParse(HeadSchema, head);
    if (!h.success) throw schemaError(v.getDotPath(h.issues[0]), h.issues[0].message);
    if (this.invalid) throw this.invalid;
    let problem = this.problem;
    if (!problem && (this.unmatched > 0 || this.duplicate)) {
      // the first entry (in archive order) the manifest does not list
      const first = this.matched.indexOf(0);
      const extra = first >= 0 && first < this.log.count ? this.log.get(first).path : undefined;
      problem = new ArchiveError('manifest_mismatch', `${extra ?? 'an entry'} is in the archive but not in ${ENTRY.manifest}`, extra);
    }
    return { root: (head as { root: string }).root, fileBytes: this.fileBytes, problem };
  }
}

/** The whole manifest as objects, for callers that ask for it (it was checked already). */
export function parseManifest(buf: Buffer): Manifest {
  return v.parse(ManifestSchema, JSON.parse(buf.toString('utf8')));
}
