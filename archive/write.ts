// Writes an archive (format v1, docs/archive-format.md) in ONE streaming pass:
//   tar (headers by node-tar's Header, file bytes read straight into the block)
//   → gzip, 1 MiB blocks compressed in parallel on the libuv pool as concatenated gzip members
//   → AES-256-CBC (openssl-compatible) when a passphrase is given
//   → SHA-256 + HMAC → a temporary file, fsynced, then renamed.
// Memory is bounded by the blocks in flight, whatever the size of the installation.
import { createHash, type Hash } from 'node:crypto';
import {
  closeSync, constants as C, fstatSync, fsyncSync, lstatSync, openSync, readdirSync, readlinkSync, readSync,
  write, type Stats,
} from 'node:fs';
import { open, readdir, rename, rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { basename, dirname, join, posix } from 'node:path';
import { Header, Pax } from 'tar';
import * as v from 'valibot';
import { createEncryptor, createMac, deriveKeys, encHeader, keyCheck, newSalt } from './crypto.ts';
import { ArchiveError } from './errors.ts';
import { GzipPool } from './gzip-pool.ts';
import { ByteTicker, collectAll } from './memory.ts';
import { Spill } from './spill.ts';
import {
  classifyEntry, ENTRY, FORMAT_VERSION, GENERATOR, MetadataSchema, ROOT_RE, SECTIONS, SettingsFileSchema,
  sidecarPaths, type ArchiveMetadata, type ManifestEntry, type Sidecar,
} from './format.ts';
import { errorMessage } from './error-message.ts';

export type Source =
  | { kind: 'buffer'; path: string; data: Buffer; mode?: number; mtime?: Date }
  | { kind: 'file'; path: string; from: string }
  | { kind: 'dir'; path: string; from: string; exclude?: (relPath: string, isDir: boolean) => boolean };

export interface WriteOptions {
  /** storage dir (must exist) */
  dir: string;
  /** e.g. archiveFileName(date, type) */
  fileName: string;
  /** top folder inside the tar, e.g. archiveBaseName(date) */
  root: string;
  /** in SECTIONS order; manifest.json is appended by the writer itself */
  sources: Source[];
  /** null = plain gzip'd tar */
  passphrase: string | null;
  /** applies to every dir source (path relative to the source dir); a source's own exclude applies too */
  exclude?: (relPath: string, isDir: boolean) => boolean;
  /** gzip level, default 6 (what tar -z, gzip and pigz use) */
  level?: number;
  /** total bytes for onProgress when the caller already ran plannedSize(); otherwise the writer walks first */
  plannedBytes?: number;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
}

export interface WriteResult {
  /** absolute path of the final archive */
  file: string;
  size_bytes: number;
  sha256: string;
  mac: string | null;
  key_check: string | null;
  /** regular files in the archive (manifest.json excluded) */
  files_count: number;
}

export interface PlannedSize {
  files_count: number;
  total_size_bytes: number;
}

/** Top-level dirs of a PHP app that hold only regenerable data. */
const CODE_CACHE_DIRS = new Set(['var/cache', 'var/tmp', 'var/sessions', 'tmp', 'cache', 'storage/cache', 'storage/framework/cache']);

/** For the code dir: `node_modules` anywhere and the usual cache/tmp dirs at its top (never vendor/…/cache). */
export function codeExclude(relPath: string, isDir: boolean): boolean {
  if (!isDir) return false;
  return basename(relPath) === 'node_modules' || CODE_CACHE_DIRS.has(relPath);
}

const BLOCK = 1 << 20;
const ZERO = Buffer.alloc(1024);

/** Mode bits kept in the archive: permissions, setuid/setgid/sticky. */
const permBits = (mode: number) => mode & 0o7777;

/** Whether `target`, a link at `rel`, resolves inside `scope` (all relative to the top folder). */
export function linkStaysInside(rel: string, target: string, scope: string): boolean {
  if (target === '' || target.startsWith('/') || target.includes('\0')) return false;
  const resolved = posix.normalize(posix.join(posix.dirname(rel), target));
  return resolved === scope || resolved.startsWith(scope + '/');
}

// ---- walking the sources ---------------------------------------------------------------------

type Item =
  | { type: 'buffer'; rel: string; data: Buffer; mode: number; mtime: Date }
  | { type: 'file'; rel: string; from: string; st: Stats }
  | { type: 'dir'; rel: string; st: Stats }
  | { type: 'symlink'; rel: string; st: Stats; target: string };

/** Every entry of the sources, in order, depth-first with sorted names; lazy, so memory stays flat. */
function* walk(sources: Source[], exclude: WriteOptions['exclude'], warn: (m: string) => void): Generator<Item> {
  for (const s of sources) {
    const rel = posix.normalize(s.path).replace(/\/+$/, '');
    if (s.kind === 'buffer') {
      yield { type: 'buffer', rel, data: s.data, mode: s.mode ?? 0o600, mtime: s.mtime ?? new Date() };
      continue;
    }
    let st: Stats;
    try {
      st = lstatSync(s.from);
    } catch (e) {
      throw new ArchiveError('io', `cannot read ${s.from} for ${rel}: ${errorMessage(e)}`, rel);
    }
    if (s.kind === 'file') {
      if (!st.isFile()) throw new ArchiveError('layout', `${s.from} (for ${rel}) is not a regular file`, rel);
      yield { type: 'file', rel, from: s.from, st };
      continue;
    }
    if (!st.isDirectory()) throw new ArchiveError('layout', `${s.from} (for ${rel}) is not a directory`, rel);
    const skip = (r: string, isDir: boolean) => (exclude?.(r, isDir) ?? false) || (s.exclude?.(r, isDir) ?? false);
    yield* walkDir(s.from, rel, '', st, skip, warn);
  }
}

function* walkDir(abs: string, rel: string, sub: string, st: Stats, skip: (r: string, d: boolean) => boolean, warn: (m: string) => void): Generator<Item> {
  yield { type: 'dir', rel, st };
  let names: string[];
  try {
    names = readdirSync(abs).sort();
  } catch (e) {
    throw new ArchiveError('io', `cannot list ${abs}: ${errorMessage(e)}`, rel);
  }
  for (const name of names) {
    const childAbs = join(abs, name);
    const childRel = `${rel}/${name}`;
    const childSub = sub ? `${sub}/${name}` : name;
    let cst: Stats;
    try {
      cst = lstatSync(childAbs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // vanished while we walked
      throw new ArchiveError('io', `cannot read ${childAbs}: ${errorMessage(e)}`, childRel);
    }
    if (cst.isDirectory()) {
      if (skip(childSub, true)) continue;
      yield* walkDir(childAbs, childRel, childSub, cst, skip, warn);
    } else if (cst.isFile()) {
      if (skip(childSub, false)) continue;
      yield { type: 'file', rel: childRel, from: childAbs, st: cst };
    } else if (cst.isSymbolicLink()) {
      if (skip(childSub, false)) continue;
      yield { type: 'symlink', rel: childRel, st: cst, target: readlinkSync(childAbs) };
    } else {
      warn(`skipped ${childAbs}: sockets, fifos and device files are not archived`);
    }
  }
}

/** A cheap stat walk: what the archive will hold (regular files and their bytes), before writing it. */
export async function plannedSize(sources: Source[], exclude?: WriteOptions['exclude']): Promise<PlannedSize> {
  let files = 0;
  let bytes = 0;
  for (const it of walk(sources, exclude, () => {})) {
    if (it.type === 'buffer') (files++, (bytes += it.data.length));
    else if (it.type === 'file') (files++, (bytes += it.st.size));
    else if (it.type === 'symlink') {
      // refuse now, before any maintenance window, what writeArchive would refuse later
      const scope = classifyEntry(it.rel, 'symlink')?.linkScope ?? null;
      if (scope === null || !linkStaysInside(it.rel, it.target, scope)) {
        throw new ArchiveError('unsafe_entry', `${it.rel} is a symlink to "${it.target}", outside ${scope ?? it.rel}/: it could not be restored safely. Make it a relative link inside that folder, or exclude it.`, it.rel);
      }
    }
  }
  return { files_count: files, total_size_bytes: bytes };
}

// ---- the pipeline ------------------------------------------------------------------------------

/**
 * Output end: optional AES-256-CBC, then SHA-256 (+HMAC), then writes on the thread pool, in order, so a
 * slow disk does not stall the main thread; at most MAX_QUEUED bytes wait.
 */
class Output {
  readonly sha: Hash = createHash('sha256');
  size = 0;
  private queued = 0;
  private chain: Promise<void> = Promise.resolve();
  private error: Error | null = null;
  constructor(
    private fd: number,
    private cipher: import('node:crypto').Cipher | null,
    private mac: import('node:crypto').Hmac | null,
  ) {}
  raw(buf: Buffer): void {
    if (this.error) throw this.error;
    if (buf.length === 0) return;
    this.sha.update(buf);
    this.mac?.update(buf);
    this.size += buf.length;
    this.queued += buf.length;
    this.chain = this.chain.then(async () => {
      if (this.error) return;
      try {
        let off = 0;
        while (off < buf.length) off += (await writeAsync(this.fd, buf, off, buf.length - off)).bytesWritten;
      } catch (e) {
        this.error = e as Error;
      } finally {
        this.queued -= buf.length;
      }
    });
  }
  push(gz: Buffer): void {
    this.raw(this.cipher ? this.cipher.update(gz) : Buffer.from(gz));
    this.ticker.add(gz.length * 4); // each member leaves its gzip chunks and cipher output as garbage
  }
  private ticker = new ByteTicker();
  /** Waits while too much is queued (backpressure from the disk). */
  async pace(): Promise<void> {
    if (this.queued > MAX_QUEUED) await this.drain();
  }
  async drain(): Promise<void> {
    await this.chain;
    if (this.error) throw this.error;
  }
  async finish(): Promise<void> {
    if (this.cipher) this.raw(this.cipher.final());
    await this.drain();
  }
}

// two blocks' worth: the page cache takes a write at once unless the disk really lags
const MAX_QUEUED = 2 << 20;
const writeAsync = promisify(write);

/** Cuts the tar stream into blocks for the gzip pool and writes the members out in order. */
class BlockGzip {
  private pool: GzipPool;
  block: Buffer;
  used = 0;
  constructor(level: number, private out: Output, private signal?: AbortSignal) {
    this.pool = new GzipPool(BLOCK, level);
    this.block = this.pool.take();
  }

  space(): number {
    return BLOCK - this.used;
  }

  /** Copies bytes in, flushing full blocks. */
  async write(buf: Buffer): Promise<void> {
    let off = 0;
    while (off < buf.length) {
      const n = Math.min(this.space(), buf.length - off);
      buf.copy(this.block, this.used, off, off + n);
      this.used += n;
      off += n;
      if (this.space() === 0) await this.flush();
    }
  }

  /** Hands the current block to the pool; waits only when the pool is full (backpressure). */
  async flush(): Promise<void> {
    if (this.signal?.aborted) throw new ArchiveError('aborted', 'the backup was cancelled');
    if (this.used > 0) {
      while (this.pool.inFlight >= this.pool.maxInFlight) this.out.push(await this.pool.next());
      this.pool.submit(this.block, this.used);
      this.block = this.pool.take();
      this.used = 0;
    }
    while (this.pool.headReady) this.out.push(await this.pool.next());
    await this.out.pace();
  }

  /** Encodes a tar header straight into the block when it fits and needs no PAX record (no allocation). */
  async header(h: HeaderInput): Promise<void> {
    if (this.space() >= 512) {
      this.block.fill(0, this.used, this.used + 512);
      const header = new Header({ path: h.path, type: h.type, mode: h.mode, size: h.size, mtime: h.mtime, uid: h.uid, gid: h.gid, linkpath: h.linkpath ?? '', uname: '', gname: '' });
      if (!header.encode(this.block, this.used)) {
        this.used += 512;
        return;
      }
    }
    await this.write(headerBytes(h));
  }

  async end(): Promise<void> {
    await this.flush();
    while (this.pool.inFlight > 0) this.out.push(await this.pool.next());
    await this.pool.close();
  }

  /** On failure: stop the workers. */
  async settle(): Promise<void> {
    await this.pool.close();
  }
}

interface HeaderInput {
  path: string; type: 'File' | 'Directory' | 'SymbolicLink'; mode: number; size: number; mtime: Date; uid: number; gid: number; linkpath?: string;
}

function headerBytes(h: HeaderInput): Buffer {
  const header = new Header({ path: h.path, type: h.type, mode: h.mode, size: h.size, mtime: h.mtime, uid: h.uid, gid: h.gid, linkpath: h.linkpath ?? '', uname: '', gname: '' });
  const needPax = header.encode();
  const block = header.block!;
  if (!needPax) return block;
  const pax = new Pax({ path: h.path, linkpath: h.linkpath, size: h.size, mtime: h.mtime, uid: h.uid, gid: h.gid }).encode();
  return Buffer.concat([pax, block]);
}

function validateBuffer(rel: string, data: Buffer): void {
  if (rel !== ENTRY.metadata && rel !== ENTRY.settings) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString('utf8'));
  } catch {
    throw new ArchiveError('layout', `${rel} is not JSON`, rel);
  }
  const r = v.safeParse(rel === ENTRY.metadata ? MetadataSchema : SettingsFileSchema, parsed);
  if (!r.success) {
    const i = r.issues[0];
    throw new ArchiveError('layout', `${rel} does not match format v1: ${v.getDotPath(i) ?? ''} ${i.message}`, rel);
  }
}

/** Writes the archive; see the file comment. Throws ArchiveError; leaves no temporary file behind. */
export async function writeArchive(opts: WriteOptions): Promise<WriteResult> {
  if (!ROOT_RE.test(opts.root)) throw new ArchiveError('layout', `root must look like phpborg-backup-YYYY-MM-DD-HHmmss, got ${opts.root}`);
  if (opts.fileName.includes('/') || opts.fileName.startsWith('.')) throw new ArchiveError('layout', `bad archive file name ${opts.fileName}`);
  const warn = opts.onWarning ?? (() => {});
  const total = opts.plannedBytes ?? (opts.onProgress ? (await plannedSize(opts.sources, opts.exclude)).total_size_bytes : 0);
  collectAll();
  const final = join(opts.dir, opts.fileName);
  const partial = join(opts.dir, partialName(opts.fileName));
  await rm(partial, { force: true });
  const fd = openSync(partial, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
  let closed = false;
  let gzipper: BlockGzip | null = null;
  let output: Output | null = null;
  let spill: Spill | null = null;
  try {
    const keys = opts.passphrase !== null ? await deriveKeys(opts.passphrase, newSalt()) : null;
    const mac = keys ? createMac(keys) : null;
    const out = (output = new Output(fd, keys ? createEncryptor(keys) : null, mac));
    if (keys) out.raw(encHeader(keys.salt));
    const gz = (gzipper = new BlockGzip(opts.level ?? 6, out, opts.signal));

    // the manifest's entries, as the bytes of its JSON text in a scratch file: nothing per entry is kept
    const manifest = (spill = new Spill([opts.dir]));
    let entriesCount = 0;
    let filesCount = 0;
    const record = (e: ManifestEntry) => {
      manifest.appendText(`${entriesCount++ ? ',' : ''}${JSON.stringify(e)}`);
      if (e.type === 'file') filesCount++;
    };
    // Paths placed so far that a later entry could repeat. A folder's walk never repeats a name, so only
    // the sources' own paths can come twice, or be met by another source's walk (overlapping sources:
    // the deeper source's path is then the first repeat): those alone are remembered.
    const sourcePaths = new Set(opts.sources.map((s) => posix.normalize(s.path).replace(/\/+$/, '')));
    const seen = new Set<string>();
    let section = 0;
    let done = 0;
    let lastReport = 0;
    const progress = () => {
      if (opts.onProgress && (done - lastReport >= 4 * BLOCK || done === total)) {
        lastReport = done;
        opts.onProgress(done, Math.max(total, done));
      }
    };
    const place = (rel: string, type: 'file' | 'dir' | 'symlink', target?: string) => {
      const rule = classifyEntry(rel, type);
      if (!rule) throw new ArchiveError('layout', `${rel} (${type}) has no place in archive format v1`, rel);
      const idx = SECTIONS.indexOf(rule.section);
      if (idx < section) throw new ArchiveError('layout', `${rel} comes after a later section; pass sources in the order of format.ts SECTIONS`, rel);
      if (rule.section === 'manifest') throw new ArchiveError('layout', 'manifest.json is written by the archive writer itself', rel);
      if (entriesCount === 0 && rel !== ENTRY.metadata) throw new ArchiveError('layout', 'metadata.json must be the first source', rel);
      if (seen.has(rel)) throw new ArchiveError('layout', `${rel} appears twice`, rel);
      if (type === 'symlink' && (rule.linkScope === null || !linkStaysInside(rel, target!, rule.linkScope))) {
        throw new ArchiveError('unsafe_entry',
          `${rel} is a symlink to "${target}", outside ${rule.linkScope ?? rel}/: it could not be restored safely. ` +
          'Make it a relative link inside that folder, or exclude it.', rel);
      }
      if (sourcePaths.has(rel)) seen.add(rel);
      section = idx;
    };
    const path = (rel: string) => `${opts.root}/${rel}`;

    for (const it of walk(opts.sources, opts.exclude, warn)) {
      if (it.type === 'buffer') {
        place(it.rel, 'file');
        validateBuffer(it.rel, it.data);
        await gz.header({ path: path(it.rel), type: 'File', mode: it.mode, size: it.data.length, mtime: it.mtime, uid: 0, gid: 0 });
        await gz.write(it.data);
        await gz.write(ZERO.subarray(0, padLen(it.data.length)));
        record({ path: it.rel, type: 'file', size: it.data.length, mode: permBits(it.mode), sha256: createHash('sha256').update(it.data).digest('hex') });
        done += it.data.length;
      } else if (it.type === 'dir') {
        place(it.rel, 'dir');
        const mode = permBits(it.st.mode);
        await gz.header({ path: path(it.rel) + '/', type: 'Directory', mode, size: 0, mtime: it.st.mtime, uid: it.st.uid, gid: it.st.gid });
        record({ path: it.rel, type: 'dir', size: 0, mode });
      } else if (it.type === 'symlink') {
        place(it.rel, 'symlink', it.target);
        const mode = permBits(it.st.mode);
        await gz.header({ path: path(it.rel), type: 'SymbolicLink', mode, size: 0, mtime: it.st.mtime, uid: it.st.uid, gid: it.st.gid, linkpath: it.target });
        record({ path: it.rel, type: 'symlink', size: 0, mode, linkname: it.target });
      } else {
        place(it.rel, 'file');
        let ffd: number;
        try {
          ffd = openSync(it.from, C.O_RDONLY | C.O_NOFOLLOW);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
            warn(`skipped ${it.from}: it disappeared during the backup`);
            seen.delete(it.rel);
            continue;
          }
          throw new ArchiveError('io', `cannot read ${it.from}: ${errorMessage(e)}`, it.rel);
        }
        try {
          // the size in the header is the size now; a file that changes meanwhile is cut or zero-padded
          const st = fstatSync(ffd);
          const size = st.size;
          const mode = permBits(st.mode);
          await gz.header({ path: path(it.rel), type: 'File', mode, size, mtime: st.mtime, uid: st.uid, gid: st.gid });
          const h = createHash('sha256');
          let left = size;
          let eof = false;
          while (left > 0) {
            if (gz.space() === 0) await gz.flush();
            const want = Math.min(gz.space(), left);
            let n = 0;
            if (!eof) {
              n = readSync(ffd, gz.block, gz.used, want, null);
              if (n === 0) {
                eof = true;
                warn(`${it.from} shrank while it was archived; padded with zeros`);
              }
            }
            if (eof) (gz.block.fill(0, gz.used, gz.used + want), (n = want));
            h.update(gz.block.subarray(gz.used, gz.used + n));
            gz.used += n;
            left -= n;
            done += n;
            progress();
          }
          await gz.write(ZERO.subarray(0, padLen(size)));
          record({ path: it.rel, type: 'file', size, mode, sha256: h.digest('hex') });
        } finally {
          closeSync(ffd);
        }
      }
    }
    for (const need of [ENTRY.settings, ENTRY.database, ENTRY.code]) {
      // placed only as a source's own path (each is a top-level file or folder of format v1)
      if (!seen.has(need)) throw new ArchiveError('missing_entry', `the sources lack ${need}, which every archive must hold`, need);
    }

    const head = JSON.stringify({ generator: GENERATOR, format_version: FORMAT_VERSION, root: opts.root });
    const mhead = Buffer.from(`${head.slice(0, -1)},"entries":[`);
    const mtail = Buffer.from(']}');
    const msize = mhead.length + manifest.length + mtail.length;
    await gz.header({ path: path(ENTRY.manifest), type: 'File', mode: 0o600, size: msize, mtime: new Date(), uid: 0, gid: 0 });
    await gz.write(mhead);
    for (const c of manifest.chunks()) await gz.write(c);
    manifest.close();
    await gz.write(mtail);
    await gz.write(ZERO.subarray(0, padLen(msize)));
    await gz.write(ZERO); // end-of-archive: two zero blocks
    await gz.end();
    await out.finish();
    fsyncSync(fd);
    closeSync(fd);
    closed = true;
    await rename(partial, final);
    await fsyncDir(opts.dir);
    progress();
    return {
      file: final,
      size_bytes: out.size,
      sha256: out.sha.digest('hex'),
      mac: mac ? mac.digest('hex') : null,
      key_check: keys ? keyCheck(keys) : null,
      files_count: filesCount,
    };
  } catch (e) {
    spill?.close();
    await gzipper?.settle();
    await output?.drain().catch(() => {}); // no write may still target the fd we close
    if (!closed) closeSync(fd);
    await rm(partial, { force: true });
    if (e instanceof ArchiveError) throw e;
    throw new ArchiveError('io', `writing ${opts.fileName} failed: ${errorMessage(e)}`);
  }
}

const padLen = (size: number) => (512 - (size % 512)) % 512;

// ---- temporary names, sidecars, cleanup --------------------------------------------------------------

const PARTIAL_RE = /^\.phpborg-backup-.*\.partial$/;
/** `.<name>.partial`: hidden, and never matches an archive name, so a crash leaves nothing that looks complete. */
export const partialName = (fileName: string) => `.${fileName}.partial`;

async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Writes `data` to `path` atomically: temp name in the same dir (0600), fsync, rename, fsync the dir. */
export async function writeFileAtomic(path: string, data: string | Buffer): Promise<void> {
  const tmp = join(dirname(path), partialName(basename(path)));
  await rm(tmp, { force: true });
  const h = await open(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
  try {
    await h.writeFile(data);
    await h.sync();
  } catch (e) {
    await h.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await h.close();
  await rename(tmp, path);
  await fsyncDir(dirname(path));
}

export interface SidecarInput {
  metadata: ArchiveMetadata;
  sha256: string;
  size_bytes: number;
  mac: string | null;
  key_check: string | null;
  /** defaults to now */
  created_at?: Date;
}

/** Writes `<file>.sha256` (exactly `sha256sum -c` format) and `<file>.json`, each atomically, 0600. */
export async function writeSidecars(file: string, s: SidecarInput): Promise<{ sha256: string; json: string }> {
  const paths = sidecarPaths(file);
  const sidecar: Sidecar = {
    generator: GENERATOR,
    format_version: FORMAT_VERSION,
    file: basename(file),
    created_at: (s.created_at ?? new Date()).toISOString(),
    size_bytes: s.size_bytes,
    sha256: s.sha256,
    mac: s.mac,
    key_check: s.key_check,
    metadata: s.metadata,
  };
  await writeFileAtomic(paths.sha256, `${s.sha256}  ${basename(file)}\n`);
  await writeFileAtomic(paths.json, JSON.stringify(sidecar, null, 2) + '\n');
  return paths;
}

/** Removes temporary files a crash left in the storage dir (archives and sidecars); returns their names. */
export async function removePartials(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const gone: string[] = [];
  for (const n of names) {
    if (!PARTIAL_RE.test(n)) continue;
    await rm(join(dir, n), { force: true });
    gone.push(n);
  }
  return gone;
}

