// The one reading pass every reader shares: file → (AES-256-CBC decrypt) → gunzip → tar entries,
// each entry checked against format v1's layout and safety rules as it arrives (docs/archive-format.md).
// Readers plug in what to keep (head), what to write (extraction), and where to stop.
import { createHash, createDecipheriv, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { dirname } from 'node:path';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import * as v from 'valibot';
import { createDecryptor, deriveKeys, HEADER_LEN, saltOf, type Keys } from './crypto.ts';
import { ArchiveError } from './errors.ts';
import {
  classifyEntry, ENTRY, GENERATOR, MetadataSchema, ROOT_RE, SECTIONS, SettingsFileSchema,
  type ArchiveMetadata, type Section, type SettingsFile,
} from './format.ts';
import { TarReader, type TarEntryHeader } from './tar-reader.ts';
import { ManifestCheck, signature, type EntryType, type ManifestVerdict } from './manifest-check.ts';
import { EntryLog } from './entry-log.ts';
import { ByteTicker } from './memory.ts';
import { linkStaysInside } from './write.ts';
import { errorMessage } from './error-message.ts';

export type { EntryType };

/** An entry that passed the layout and safety checks. */
export interface CheckedEntry {
  /** relative to the top folder, no trailing slash */
  rel: string;
  type: EntryType;
  section: Section;
  size: number;
  mode: number;
  mtime: Date | undefined;
  linkname?: string;
}

/** Receives entries for extraction; data only comes for files. */
export interface EntrySink {
  entry(e: CheckedEntry): void;
  data(chunk: Buffer): void;
  /** called after the whole file; sha256 of its contents */
  end(e: CheckedEntry, sha256: string | undefined): void;
}

export interface ScanOptions {
  /** the keys when the file is encrypted (derive once with keysFor) */
  keys?: Keys | null;
  /** stop reading as soon as an entry of this section (or a later one) begins */
  stopAt?: Section;
  /** contents kept in memory besides metadata/settings/manifest (e.g. config files for a preview) */
  keep?: (e: CheckedEntry) => boolean;
  sink?: EntrySink;
  signal?: AbortSignal;
  onProgress?: (readBytes: number, fileBytes: number) => void;
  /** where the entry log may spill (default: the archive's folder, else the system temp dir) */
  spillDir?: string;
}

export interface ScanResult {
  root: string;
  metadata: ArchiveMetadata;
  settings: SettingsFile | null;
  /** bytes of the regular files manifest.json lists (after a full pass) */
  fileBytes: number;
  /** the entries before database.sql (metadata, settings, config, ssh), in order, with their SHA-256 */
  entries: (CheckedEntry & { sha256?: string })[];
  kept: Map<string, Buffer>;
  /** true when stopAt ended the pass early */
  stopped: boolean;
}

/** Whether the file starts with openssl's `Salted__` header; its salt. */
export async function readSalt(file: string): Promise<{ encrypted: boolean; salt: Buffer | null; size: number }> {
  const h = await open(file, 'r');
  try {
    const st = await h.stat();
    const buf = Buffer.alloc(HEADER_LEN);
    const { bytesRead } = await h.read(buf, 0, HEADER_LEN, 0);
    const salt = saltOf(buf.subarray(0, bytesRead));
    return { encrypted: salt !== null, salt, size: st.size };
  } finally {
    await h.close();
  }
}

/** Keys for an encrypted file (null when plain); a clear error when the passphrase is missing. */
export async function keysFor(file: string, passphrase: string | null | undefined): Promise<Keys | null> {
  const { salt } = await readSalt(file);
  if (!salt) return null;
  if (!passphrase) {
    throw new ArchiveError('passphrase_required', 'this archive is encrypted: give its passphrase (stored in the settings, or --passphrase-file)');
  }
  return deriveKeys(passphrase, salt);
}

/** Whether the first cipher block decrypts to a gzip header: the key is right (or the file's start is corrupt). */
export async function firstBlockLooksRight(file: string, keys: Keys): Promise<boolean | null> {
  const h = await open(file, 'r');
  try {
    const buf = Buffer.alloc(16);
    const { bytesRead } = await h.read(buf, 0, 16, HEADER_LEN);
    if (bytesRead < 16) return null;
    const d = createDecipheriv('aes-256-cbc', keys.key, keys.iv).setAutoPadding(false);
    const p = d.update(buf);
    return p[0] === 0x1f && p[1] === 0x8b && p[2] === 0x08;
  } finally {
    await h.close();
  }
}

const TYPE: Record<string, EntryType> = { File: 'file', OldFile: 'file', ContiguousFile: 'file', Directory: 'dir', SymbolicLink: 'symlink' };

const LIMITS: Partial<Record<string, number>> = {
  [ENTRY.metadata]: 1 << 20,
  [ENTRY.settings]: 64 << 20,
  [ENTRY.manifest]: 512 << 20,
};

/** What checkEntry remembers of the entries so far: the log (small in memory, whatever the archive's size). */
export interface EntryState {
  root: string | null;
  section: number;
  /** every entry but the manifest, in order; each one's signature is sealed as it ends */
  log: EntryLog;
  /** folders of entries that are not entries themselves (a keeper archive has none) */
  parents: Set<string>;
  count: number;
  manifestSeen: boolean;
}

export const newEntryState = (spillDirs: (string | undefined)[] = []): EntryState =>
  ({ root: null, section: 0, log: new EntryLog(spillDirs), parents: new Set(), count: 0, manifestSeen: false });

/** Checks one raw tar header against the rules; returns the relative entry or throws. */
export function checkEntry(h: TarEntryHeader, state: EntryState): CheckedEntry {
  const raw = h.path;
  if (raw.includes('\0')) throw new ArchiveError('unsafe_entry', `entry name with a NUL byte refused`, raw);
  if (raw.startsWith('/')) throw new ArchiveError('unsafe_entry', `absolute path "${raw}" refused: archive entries must stay inside the archive`, raw);
  const trimmed = raw.replace(/\/+$/, '');
  const parts = trimmed.split('/');
  if (parts.includes('..')) throw new ArchiveError('unsafe_entry', `path "${raw}" with ".." refused: archive entries must stay inside the archive`, raw);
  if (parts.some((p) => p === '' || p === '.')) throw new ArchiveError('layout', `malformed entry path "${raw}"`, raw);
  if (h.type === 'Link') throw new ArchiveError('unsafe_entry', `hard link "${raw}" → "${h.linkpath}" refused: format v1 holds no hard links`, raw);
  if (h.type === 'CharacterDevice' || h.type === 'BlockDevice' || h.type === 'FIFO') {
    throw new ArchiveError('unsafe_entry', `device or fifo entry "${raw}" (${h.type}) refused`, raw);
  }
  const type = TYPE[h.type];
  if (!type) throw new ArchiveError('unsafe_entry', `entry "${raw}" of type ${h.type} refused: only files, directories and symlinks are allowed`, raw);

  const top = parts[0];
  if (state.root === null) {
    if (!ROOT_RE.test(top)) throw new ArchiveError('not_keeper', `not a phpborg-keeper archive: its top folder is "${top}", not phpborg-backup-YYYY-MM-DD-HHmmss`, raw);
    state.root = top;
  } else if (top !== state.root) {
    throw new ArchiveError('layout', `entry "${raw}" is outside the archive's single top folder ${state.root}/`, raw);
  }
  if (parts.length < 2) throw new ArchiveError('layout', `entry "${raw}" is the top folder itself; format v1 starts with metadata.json`, raw);
  const rel = parts.slice(1).join('/');
  if (state.count === 0 && rel !== ENTRY.metadata) {
    throw new ArchiveError('not_keeper', `not a phpborg-keeper archive: its first entry is ${rel}, not metadata.json`, rel);
  }
  if (state.manifestSeen) throw new ArchiveError('layout', `entry ${rel} comes after manifest.json, which must be last`, rel);
  const rule = classifyEntry(rel, type);
  if (!rule) throw new ArchiveError('layout', `entry ${rel} (${type}) has no place in archive format v1`, rel);
  const idx = SECTIONS.indexOf(rule.section);
  if (idx < state.section) throw new ArchiveError('layout', `entry ${rel} is out of order (the ${rule.section} section must come before ${SECTIONS[state.section]})`, rel);
  const { log } = state;
  // the manifest is never in the log, but nothing may follow it (checked above)
  if (log.find(rel) >= 0) throw new ArchiveError('layout', `entry ${rel} appears twice`, rel);
  // nothing may be written through a link the archive itself created
  for (let i = rel.indexOf('/'); i !== -1; i = rel.indexOf('/', i + 1)) {
    const dir = rel.slice(0, i);
    if (log.dirs.has(dir) || state.parents.has(dir)) continue;
    const above = log.find(dir);
    if (above < 0) continue;
    if (log.typeOf(above) === 'symlink') throw new ArchiveError('unsafe_entry', `entry ${rel} lies beneath the symlink ${dir}`, rel);
    // extraction could not create it: a verified archive must be a restorable one
    throw new ArchiveError('layout', `entry ${rel} lies beneath ${dir}, which is a file: it cannot be restored`, rel);
  }
  if (type !== 'dir' && state.parents.has(rel)) throw new ArchiveError('layout', `${type} entry ${rel} is also the folder of earlier entries: it cannot be restored`, rel);
  if (type !== 'file' && h.size !== 0) throw new ArchiveError('corrupt', `${type} entry ${rel} carries data`, rel);
  let linkname: string | undefined;
  if (type === 'symlink') {
    linkname = h.linkpath;
    if (rule.linkScope === null || !linkStaysInside(rel, linkname, rule.linkScope)) {
      throw new ArchiveError('unsafe_entry', `symlink ${rel} → "${linkname}" points outside ${rule.linkScope ?? 'its place'}/: refused`, rel);
    }
  }
  const limit = LIMITS[rel];
  if (limit !== undefined && h.size > limit) throw new ArchiveError('layout', `${rel} is ${h.size} bytes, larger than format v1 allows (${limit})`, rel);
  if (rule.section !== 'manifest') log.add(rel, type);
  // a folder that is an entry needs no mark: an entry of the same name is refused as a duplicate first
  for (let i = rel.indexOf('/'); i !== -1; i = rel.indexOf('/', i + 1)) {
    const dir = rel.slice(0, i);
    if (!log.dirs.has(dir)) state.parents.add(dir);
  }
  state.section = idx;
  state.count++;
  if (rule.section === 'manifest') state.manifestSeen = true;
  return { rel, type, section: rule.section, size: h.size, mode: h.mode & 0o7777, mtime: h.mtime, linkname };
}

function parseJson<T>(rel: string, buf: Buffer, schema: v.GenericSchema<unknown, T>, notKeeperIf?: (x: unknown) => boolean): T {
  let x: unknown;
  try {
    x = JSON.parse(buf.toString('utf8'));
  } catch {
    throw new ArchiveError(rel === ENTRY.metadata ? 'not_keeper' : 'corrupt', `${rel} is not valid JSON`, rel);
  }
  if (notKeeperIf?.(x)) throw new ArchiveError('not_keeper', `not a phpborg-keeper archive: ${rel} was not written by ${GENERATOR}`, rel);
  const r = v.safeParse(schema, x);
  if (!r.success) {
    const i = r.issues[0];
    throw new ArchiveError('layout', `${rel} does not match format v1: ${v.getDotPath(i) ?? '(root)'}: ${i.message}`, rel);
  }
  return r.output;
}

const notKeeper = (x: unknown) => typeof x !== 'object' || x === null || (x as { generator?: unknown }).generator !== GENERATOR;

/** Maps low-level stream errors (zlib, decipher) to ArchiveErrors that say what to do. */
function streamError(e: unknown): ArchiveError {
  if (e instanceof ArchiveError) return e;
  const err = e as NodeJS.ErrnoException;
  const msg = errorMessage(e);
  if (err?.code === 'ABORT_ERR' || err?.name === 'AbortError') return new ArchiveError('aborted', 'the operation was cancelled');
  if (/unexpected end of file/i.test(msg)) return new ArchiveError('truncated', 'the archive is cut short (gzip data ends early): the file is incomplete; use another backup', undefined, 'gzip');
  if (/wrong final block length/i.test(msg)) return new ArchiveError('truncated', 'the encrypted archive is cut short (not a whole number of cipher blocks): the file is incomplete', undefined, 'gzip');
  // bad padding at the very end: with a right key (checked by the caller) the file was cut or damaged
  if (/bad decrypt/i.test(msg)) return new ArchiveError('truncated', 'the encrypted data does not end properly: the file is cut short or damaged; use another backup', undefined, 'gzip');
  if (err?.code?.startsWith('Z_') || /header check|invalid (block|distance|stored|code)|incorrect|too many length/i.test(msg)) {
    return new ArchiveError('corrupt', `gzip data is damaged (${msg}): the file is corrupt; use another backup`, undefined, 'gzip');
  }
  if (err?.code === 'ENOENT') return new ArchiveError('io', `archive not found: ${err.path ?? ''}`);
  if (err?.code === 'ENOSPC') return new ArchiveError('insufficient_space', `the disk is full: ${msg}`);
  return new ArchiveError('io', `reading the archive failed: ${msg}`);
}

class Stop extends Error {}

/**
 * One pass over the archive. Throws ArchiveError on the first problem. Full passes (no stopAt) also
 * check the trailing manifest against every entry seen and the required entries.
 */
export async function scanArchive(file: string, opts: ScanOptions = {}): Promise<ScanResult> {
  const { encrypted, size: fileSize } = await readSalt(file);
  const keys = opts.keys ?? null;
  if (encrypted && !keys) throw new ArchiveError('passphrase_required', 'this archive is encrypted: give its passphrase');
  const state = newEntryState([opts.spillDir, dirname(file)]);
  const entries: ScanResult['entries'] = [];
  const { log } = state;
  const kept = new Map<string, Buffer>();
  let metadata: ArchiveMetadata | null = null;
  let settings: SettingsFile | null = null;
  // manifest.json, checked against the log as its bytes arrive
  let manifest: ManifestCheck | null = null;
  let verdict: ManifestVerdict | null = null;
  let cur: CheckedEntry | null = null;
  let hash: Hash | null = null;
  let chunks: Buffer[] | null = null;
  let stopped = false;
  const stopIdx = opts.stopAt ? SECTIONS.indexOf(opts.stopAt) : Infinity;

  const tar = new TarReader({
    entry(h) {
      const e = checkEntry(h, state);
      if (SECTIONS.indexOf(e.section) >= stopIdx) {
        stopped = true;
        throw new Stop();
      }
      cur = e;
      hash = e.type === 'file' ? createHash('sha256') : null;
      const special = e.rel === ENTRY.metadata || e.rel === ENTRY.settings;
      chunks = e.type === 'file' && (special || opts.keep?.(e)) ? [] : null;
      if (e.rel === ENTRY.manifest && e.type === 'file') manifest = new ManifestCheck(log);
      opts.sink?.entry(e);
    },
    data(chunk) {
      hash!.update(chunk);
      if (chunks) chunks.push(Buffer.from(chunk));
      manifest?.write(chunk);
      opts.sink?.data(chunk);
    },
    entryEnd() {
      const e = cur!;
      const sha256 = hash ? hash.digest('hex') : undefined;
      if (chunks) {
        const buf = Buffer.concat(chunks);
        if (e.rel === ENTRY.metadata) metadata = parseJson(e.rel, buf, MetadataSchema, notKeeper);
        else if (e.rel === ENTRY.settings) settings = parseJson(e.rel, buf, SettingsFileSchema);
        else kept.set(e.rel, buf);
      }
      if (e.rel === ENTRY.manifest && manifest) verdict = manifest.end();
      if (e.rel !== ENTRY.manifest) {
        log.seal(signature(e.type, e.size, e.mode, e.linkname, sha256));
        if (SECTIONS.indexOf(e.section) < HEAD_END) entries.push(sha256 ? { ...e, sha256 } : e);
      }
      opts.sink?.end(e, sha256);
      cur = null;
      hash = null;
      chunks = null;
    },
  });

  const source = createReadStream(file, { start: encrypted ? HEADER_LEN : 0, highWaterMark: 1 << 20, signal: opts.signal });
  let readBytes = 0;
  const ticker = new ByteTicker();
  source.on('data', (c) => {
    readBytes += c.length;
    ticker.add(c.length * 4); // read, decrypted, and ~2-4x that inflated: all short-lived buffers
    opts.onProgress?.(readBytes, fileSize);
  });
  const stages: NodeJS.ReadWriteStream[] = [];
  if (keys) stages.push(createDecryptor(keys));
  stages.push(createGunzip({ chunkSize: 256 << 10 }));
  // node 20's pipeline reports an AbortError instead of what the last stage threw: keep our own
  let failure: unknown = null;
  try {
    await (pipeline as (...streams: unknown[]) => Promise<void>)(source, ...stages, async function consume(src: AsyncIterable<Buffer>) {
      try {
        for await (const chunk of src) tar.write(chunk);
      } catch (e) {
        failure = e;
        throw e;
      }
    });
    tar.end();
  } catch (e) {
    const err = failure ?? e;
    if (!(err instanceof Stop)) {
      log.close();
      throw streamError(err);
    }
  } finally {
    source.destroy();
    for (const s of stages) (s as unknown as { destroy(): void }).destroy();
  }
  try {
    if (!metadata) throw new ArchiveError('not_keeper', 'not a phpborg-keeper archive: no metadata.json');
    // assigned in the reader's callbacks, which TypeScript does not follow
    const checked = verdict as ManifestVerdict | null;
    const result: ScanResult = { root: state.root!, metadata, settings, fileBytes: checked?.fileBytes ?? 0, entries, kept, stopped };
    if (!stopped && !opts.stopAt) finalChecks(result, checked, log);
    return result;
  } finally {
    log.close();
  }
}

const HEAD_END = SECTIONS.indexOf('database');

/** After a full pass: required entries present, and the manifest (checked by checkManifest) matches what was read, both ways. */
export function finalChecks(r: ScanResult, manifest: ManifestVerdict | null, log: EntryLog): void {
  for (const need of [ENTRY.settings, ENTRY.database, ENTRY.code]) {
    if (log.find(need) < 0) throw new ArchiveError('missing_entry', `the archive lacks ${need}: it cannot be restored`, need);
  }
  if (!manifest) throw new ArchiveError('missing_entry', 'the archive lacks manifest.json (its last entry): it is incomplete', ENTRY.manifest);
  if (manifest.root !== r.root) throw new ArchiveError('manifest_mismatch', `manifest.json names the top folder ${manifest.root}, the archive holds ${r.root}`);
  if (manifest.problem) throw manifest.problem;
  const db = log.get(log.find(ENTRY.database)).sig.split('\0')[4];
  if (db !== r.metadata.database_sha256) {
    throw new ArchiveError('manifest_mismatch', 'database.sql does not match metadata.database_sha256: the dump was altered or damaged', ENTRY.database);
  }
}
