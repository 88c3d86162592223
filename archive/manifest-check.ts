// Checks manifest.json against the entries read, one listed entry at a time: only its bytes are held,
// never every entry as an object (for big installs that cost more than the rest of a restore), and
// every check and message is what parsing and validating the whole document at once would give.
import * as v from 'valibot';
import { ArchiveError } from './errors.ts';
import { ENTRY, GENERATOR, ManifestEntrySchema, ManifestSchema, type Manifest } from './format.ts';

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

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);

class JsonSyntax extends Error {}

/**
 * The top-level "entries" array's elements as byte ranges (start, end, start, end, …: flat, so a
 * quarter-million entries cost a few MiB), and the rest of the document (`skeleton`) with that array
 * emptied. Only the structure is tracked here; each piece is then checked by JSON.parse, so a document
 * is accepted exactly when JSON.parse would accept it whole.
 */
function split(buf: Buffer): { skeleton: string; elements: number[] } {
  let elements: number[] = [];
  const skel: string[] = [];
  let from = 0;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let expectKey = false;
  let keyStart = -1;
  let key: string | null = null;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (escaped) escaped = false;
      else if (c === 0x5c) escaped = true;
      else if (c === 0x22) {
        inString = false;
        if (keyStart >= 0) {
          key = JSON.parse(buf.toString('utf8', keyStart, i + 1)) as string;
          keyStart = -1;
        }
      }
      continue;
    }
    if (c === 0x22) {
      inString = true;
      if (depth === 1 && expectKey) (keyStart = i), (expectKey = false);
    } else if (c === 0x7b || c === 0x5b) {
      if (depth === 0 && c === 0x7b) expectKey = true;
      if (depth === 1 && c === 0x5b && key === 'entries') {
        // the array's elements are cut out here; JSON.parse keeps the last of duplicate keys, so do we
        skel.push(buf.toString('utf8', from, i + 1));
        // from its `]` on, the skeleton goes on
        i = from = arrayElements(buf, i + 1, (elements = []));
        key = null;
        continue;
      }
      depth++;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    } else if (c === 0x2c && depth === 1) {
      expectKey = true;
      key = null;
    } else if (c === 0x3a && depth === 1 && key === 'entries') {
      // a value other than an array: the skeleton keeps it, the schema reports it
      let j = i + 1;
      while (j < buf.length && WS.has(buf[j])) j++;
      if (buf[j] !== 0x5b) (key = null), (elements = []);
    }
  }
  skel.push(buf.toString('utf8', from));
  return { skeleton: skel.join(''), elements };
}

/** Splits an array's elements from `i` (just after its `[`); returns the index of its `]`. */
function arrayElements(buf: Buffer, i: number, out: number[]): number {
  const ws = () => {
    while (i < buf.length && WS.has(buf[i])) i++;
  };
  ws();
  if (buf[i] === 0x5d) return i;
  for (;;) {
    ws();
    const start = i;
    const c = buf[i];
    if (c === 0x7b || c === 0x5b || c === 0x22) {
      let depth = 0;
      let inString = false;
      let escaped = false;
      for (; i < buf.length; i++) {
        const d = buf[i];
        if (inString) {
          if (escaped) escaped = false;
          else if (d === 0x5c) escaped = true;
          else if (d === 0x22) inString = false;
        } else if (d === 0x22) inString = true;
        else if (d === 0x7b || d === 0x5b) depth++;
        else if (d === 0x7d || d === 0x5d) depth--;
        if (!inString && depth === 0) break;
      }
      i++;
    } else {
      while (i < buf.length && !WS.has(buf[i]) && buf[i] !== 0x2c && buf[i] !== 0x5d) i++;
    }
    if (i > buf.length || start === i) throw new JsonSyntax();
    out.push(start, i);
    ws();
    if (buf[i] === 0x5d) return i;
    if (buf[i] !== 0x2c) throw new JsonSyntax();
    i++;
  }
}

const notJson = () => new ArchiveError('corrupt', `${ENTRY.manifest} is not valid JSON`, ENTRY.manifest);
const schemaError = (path: string | null, message: string) =>
  new ArchiveError('layout', `${ENTRY.manifest} does not match format v1: ${path ?? '(root)'}: ${message}`, ENTRY.manifest);

/**
 * Parses and validates manifest.json (throws what a whole parse would: corrupt, not_keeper, layout),
 * then compares it with `sigs` (every entry read but the manifest → its signature). Comparison
 * problems are returned, not thrown: they rank after the archive-wide checks (see finalChecks).
 */
export function checkManifest(buf: Buffer, sigs: Map<string, string>): ManifestVerdict {
  let parts: ReturnType<typeof split>;
  let head: unknown;
  try {
    parts = split(buf);
    head = JSON.parse(parts.skeleton);
  } catch {
    throw notJson();
  }
  // One pass over the entries. Errors rank as a whole parse and validation would rank them: a syntax
  // error anywhere, then the generator, the head's fields, the first invalid entry, then comparisons.
  const { elements } = parts;
  const matched = new Map<string, string>();
  let fileBytes = 0;
  let invalid: ArchiveError | null = null;
  let problem: ArchiveError | null = null;
  let duplicate = false;
  try {
    for (let i = 0; i < elements.length / 2; i++) {
      let x: unknown;
      try {
        x = JSON.parse(buf.toString('utf8', elements[2 * i], elements[2 * i + 1]));
      } catch {
        throw notJson();
      }
      if (invalid) continue;
      const r = v.safeParse(ManifestEntrySchema, x);
      if (!r.success) {
        const p = v.getDotPath(r.issues[0]);
        invalid = schemaError(`entries.${i}${p ? `.${p}` : ''}`, r.issues[0].message);
        continue;
      }
      if (problem) continue;
      // what is matched moves to `matched`: what stays in `sigs` is what the manifest does not list
      const m = r.output;
      if (m.type === 'file') fileBytes += m.size;
      let got = sigs.get(m.path);
      if (got === undefined) {
        got = matched.get(m.path);
        duplicate ||= got !== undefined;
      } else {
        sigs.delete(m.path);
        matched.set(m.path, got);
      }
      if (got === undefined) {
        problem = new ArchiveError('manifest_mismatch', `${ENTRY.manifest} lists ${m.path}, which is missing from the archive`, m.path);
        continue;
      }
      const want = signature(m.type, m.size, m.mode, m.linkname, m.type === 'file' ? m.sha256 : undefined);
      if (got !== want) {
        const a = got.split('\0');
        const b = want.split('\0');
        const field = FIELDS[a.findIndex((s, k) => s !== b[k])] ?? 'entry';
        problem = new ArchiveError('manifest_mismatch', `${m.path}: ${field} differs from ${ENTRY.manifest}: the archive was altered or damaged`, m.path);
      }
    }
    if (!problem && (sigs.size > 0 || duplicate)) {
      // the first entry (in archive order) the manifest does not list
      const extra = sigs.keys().next().value as string | undefined;
      problem = new ArchiveError('manifest_mismatch', `${extra ?? 'an entry'} is in the archive but not in ${ENTRY.manifest}`, extra);
    }
  } finally {
    // back into `sigs`, so it holds every entry again
    for (const [k, s] of matched) sigs.set(k, s);
  }
  if (typeof head !== 'object' || head === null || (head as { generator?: unknown }).generator !== GENERATOR) {
    throw new ArchiveError('not_keeper', `not a phpborg-keeper archive: ${ENTRY.manifest} was not written by ${GENERATOR}`, ENTRY.manifest);
  }
  const h = v.safeParse(HeadSchema, head);
  if (!h.success) throw schemaError(v.getDotPath(h.issues[0]), h.issues[0].message);
  if (invalid) throw invalid;
  return { root: (head as { root: string }).root, fileBytes, problem };
}

/** The whole manifest as objects, for callers that ask for it (it was checked already). */
export function parseManifest(buf: Buffer): Manifest {
  return v.parse(ManifestSchema, JSON.parse(buf.toString('utf8')));
}
