// Reads an archive (format v1): integrity (size, SHA-256, HMAC), head (restore preview), full
// verification, and safe extraction into a staging dir (docs/archive-format.md).
import { createHash } from 'node:crypto';
import {
  closeSync, constants as C, fchmodSync, futimesSync, lstatSync, lutimesSync, mkdirSync, openSync, readdirSync, statfsSync,
  symlinkSync, utimesSync, chmodSync, writeSync, createReadStream, readFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as v from 'valibot';
import { createMac, deriveKeys, hexEqual, keyCheck, type Keys } from './crypto.ts';
import { ArchiveError, type ArchiveErrorCode } from './errors.ts';
import { parseManifest } from './manifest-check.ts';
import { ENTRY, SidecarSchema, sidecarPaths, type ArchiveMetadata, type Manifest, type SettingsFile, type Sidecar } from './format.ts';
import { ByteTicker } from './memory.ts';
import { firstBlockLooksRight, keysFor, readSalt, scanArchive, type CheckedEntry, type EntrySink } from './scan.ts';
import { errorMessage } from './error-message.ts';

export interface Expected {
  sha256?: string | null;
  size_bytes?: number | null;
  mac?: string | null;
  key_check?: string | null;
}

export type IntegrityVerdict = 'ok' | 'corrupt' | 'truncated' | 'wrong_passphrase' | 'passphrase_required';

export interface IntegrityResult {
  verdict: IntegrityVerdict;
  message: string;
  encrypted: boolean;
  size_bytes: number;
  /** computed (null when the pass did not run) */
  sha256: string | null;
  /** computed HMAC (null when plain or no passphrase) */
  mac: string | null;
  /** what could be compared: false when no expected value was known */
  checked: { size: boolean; sha256: boolean; mac: boolean };
}

export async function isEncrypted(file: string): Promise<boolean> {
  try {
    return (await readSalt(file)).encrypted;
  } catch (e) {
    throw ioError(e, file);
  }
}

function ioError(e: unknown, file: string): ArchiveError {
  if (e instanceof ArchiveError) return e;
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') return new ArchiveError('io', `archive not found: ${file}`);
  return new ArchiveError('io', `cannot read ${file}: ${errorMessage(e)}`);
}

/** The `<file>.json` sidecar, validated; null when there is none. */
export async function readSidecar(file: string): Promise<Sidecar | null> {
  const p = sidecarPaths(file).json;
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError(e, p);
  }
  let x: unknown;
  try {
    x = JSON.parse(text);
  } catch {
    throw new ArchiveError('corrupt', `the sidecar ${p} is not JSON: restore it from the ledger or delete it`);
  }
  const r = v.safeParse(SidecarSchema, x);
  if (!r.success) throw new ArchiveError('not_keeper', `the sidecar ${p} was not written by phpborg-keeper format v1: ${r.issues[0].message}`);
  return r.output;
}

/** Expected values: the caller's, or else the sidecar's. */
async function expectedFor(file: string, given: Expected | undefined): Promise<Expected> {
  if (given) return given;
  const s = await readSidecar(file);
  return s ? { sha256: s.sha256, size_bytes: s.size_bytes, mac: s.mac, key_check: s.key_check } : {};
}

const WRONG = 'wrong passphrase: this archive was encrypted with another one (check the backup passphrase setting, or give the right one)';

/**
 * One pass over the bytes of the file: size, SHA-256 and (encrypted) HMAC against what is expected.
 * Tells a wrong passphrase from a damaged file: by the key check when known, else by the SHA-256 and
 * by whether the first cipher block decrypts to a gzip header.
 */
export async function checkIntegrity(file: string, opts: { passphrase?: string | null; expected?: Expected; signal?: AbortSignal } = {}): Promise<IntegrityResult> {
  let head: Awaited<ReturnType<typeof readSalt>>;
  try {
    head = await readSalt(file);
  } catch (e) {
    throw ioError(e, file);
  }
  const exp = opts.expected ?? {};
  const { encrypted, salt, size } = head;
  const checked = { size: exp.size_bytes != null, sha256: exp.sha256 != null, mac: false };
  const res = (verdict: IntegrityVerdict, message: string, sha256: string | null = null, mac: string | null = null): IntegrityResult =>
    ({ verdict, message, encrypted, size_bytes: size, sha256, mac, checked });

  if (exp.size_bytes != null && size !== exp.size_bytes) {
    return size < exp.size_bytes
      ? res('truncated', `the file is ${size} bytes, ${exp.size_bytes} expected: it is incomplete (interrupted copy or full disk); use another backup`)
      : res('corrupt', `the file is ${size} bytes, ${exp.size_bytes} expected: it was altered; use another backup`);
  }
  let keys: Keys | null = null;
  let keyOk: boolean | null = null;
  if (encrypted && opts.passphrase) {
    keys = await deriveKeys(opts.passphrase, salt!);
    if (exp.key_check) {
      keyOk = hexEqual(keyCheck(keys), exp.key_check);
      if (!keyOk) return res('wrong_passphrase', WRONG);
    }
  }

  const sha = createHash('sha256');
  const mac = keys ? createMac(keys) : null;
  const ticker = new ByteTicker(16 << 20);
  try {
    for await (const chunk of createReadStream(file, { highWaterMark: 4 << 20, signal: opts.signal })) {
      sha.update(chunk as Buffer);
      mac?.update(chunk as Buffer);
      ticker.add((chunk as Buffer).length);
    }
  } catch (e) {
    throw ioError(e, file);
  }
  const shaHex = sha.digest('hex');
  const macHex = mac ? mac.digest('hex') : null;
  const shaOk = exp.sha256 != null ? shaHex === exp.sha256 : null;
  if (shaOk === false) return res('corrupt', 'the SHA-256 of the file differs from the one recorded when it was written: the file is damaged or altered; use another backup', shaHex, macHex);
  if (!encrypted) return res('ok', checked.sha256 ? 'size and SHA-256 match' : 'no recorded SHA-256 to compare with (no sidecar)', shaHex, null);
  if (!keys) return res('passphrase_required', 'this archive is encrypted: its HMAC (and contents) can only be checked with the passphrase', shaHex, null);
  if (exp.mac) {
    checked.mac = true;
    if (hexEqual(macHex!, exp.mac)) return res('ok', 'size, SHA-256 and HMAC match', shaHex, macHex);
    // the bytes are the recorded ones (SHA-256 equal) or the key is known right: tell which is wrong
    if (keyOk === true) return res('corrupt', 'the HMAC does not match: the file was altered; use another backup', shaHex, macHex);
    if (shaOk === true) return res('wrong_passphrase', WRONG, shaHex, macHex);
  }
  const looks = await firstBlockLooksRight(file, keys);
  if (looks === false) return res('wrong_passphrase', `${WRONG} (or the start of the file is damaged)`, shaHex, macHex);
  if (exp.mac) return res('corrupt', 'the HMAC does not match: the file was altered; use another backup', shaHex, macHex);
  return res('ok', 'no recorded HMAC to compare with (no sidecar); the passphrase looks right', shaHex, macHex);
}

const verdictCode = (v: IntegrityVerdict): ArchiveErrorCode => (v === 'ok' ? 'corrupt' : v);

/** After a read failed on an encrypted archive: was it the passphrase? */
async function explain(e: unknown, file: string, keys: Keys | null): Promise<never> {
  if (e instanceof ArchiveError && keys && (e.code === 'corrupt' || e.code === 'truncated' || e.code === 'not_keeper')) {
    if ((await firstBlockLooksRight(file, keys)) === false) throw new ArchiveError('wrong_passphrase', WRONG);
  }
  throw e;
}

// ---- head (restore preview) -------------------------------------------------------------------------

export interface Head {
  root: string;
  metadata: ArchiveMetadata;
  settings: SettingsFile;
  /** config/env.backup, config/sudoers/*, config/systemd/*, config/etc-phpborg/* → contents */
  config: Map<string, Buffer>;
  /** ssh/* files → mode and SHA-256 only (key material stays in the archive) */
  ssh: Map<string, { mode: number; sha256: string }>;
  /** the SSH trees the archive holds (`ssh`, `ssh-borg`), empty ones included */
  sshRoots: Set<string>;
  encrypted: boolean;
}

/**
 * The archive's first entries (metadata, settings, config, ssh), read until database.sql begins and
 * no further: as fast on a 10 GiB archive as on a small one. The HMAC is not checked here (it needs
 * the whole file); restore verifies everything before it changes anything.
 */
export async function readHead(file: string, opts: { passphrase?: string | null; expected?: Expected; signal?: AbortSignal } = {}): Promise<Head> {
  const keys = await keysFor(file, opts.passphrase).catch((e) => Promise.reject(ioError(e, file)));
  if (keys && opts.expected?.key_check && !hexEqual(keyCheck(keys), opts.expected.key_check)) throw new ArchiveError('wrong_passphrase', WRONG);
  let r: Awaited<ReturnType<typeof scanArchive>>;
  try {
    r = await scanArchive(file, { keys, stopAt: 'database', keep: (e) => e.section === 'config', signal: opts.signal });
  } catch (e) {
    return explain(e, file, keys);
  }
  if (!r.settings) throw new ArchiveError('missing_entry', 'the archive lacks settings.json', 'settings.json');
  const ssh = new Map<string, { mode: number; sha256: string }>();
  const sshRoots = new Set<string>();
  for (const e of r.entries) {
    if (e.section !== 'ssh') continue;
    sshRoots.add(e.rel.split('/')[0]);
    if (e.type === 'file') ssh.set(e.rel, { mode: e.mode, sha256: e.sha256! });
  }
  return { root: r.root, metadata: r.metadata, settings: r.settings, config: r.kept, ssh, sshRoots, encrypted: keys !== null };
}

// ---- verify -----------------------------------------------------------------------------------------

export type VerifyCheckName = 'size' | 'sha256' | 'hmac' | 'gzip' | 'tar' | 'layout' | 'manifest' | 'metadata';

export interface VerifyCheck {
  name: VerifyCheckName;
  ok: boolean;
  error?: string;
  /** why a check passed without comparing (e.g. no sidecar, not encrypted) */
  note?: string;
  /**
   * set when the check could not run because of another failure (ok is then false): the decisive
   * failure is reported once, on its own check, and these only say why they did not run
   */
  not_checked?: 'needs_passphrase' | 'size_wrong' | 'earlier_failure';
}

const NOT_CHECKED: Record<NonNullable<VerifyCheck['not_checked']>, string> = {
  needs_passphrase: 'not checked (needs the right passphrase)',
  size_wrong: 'not checked (the size is wrong)',
  earlier_failure: 'not checked (reading stopped at an earlier failure)',
};
const notChecked = (name: VerifyCheckName, why: NonNullable<VerifyCheck['not_checked']>): VerifyCheck => ({ name, ok: false, not_checked: why, error: NOT_CHECKED[why] });

export interface VerifyResult {
  ok: boolean;
  /** the first failure's code, null when ok */
  code: ArchiveErrorCode | null;
  checks: VerifyCheck[];
  metadata: ArchiveMetadata | null;
  /** bytes of every file the verified manifest lists: what extraction writes (the metadata only claims it) */
  content_bytes: number | null;
  encrypted: boolean;
}

const STRUCTURE: VerifyCheckName[] = ['metadata', 'gzip', 'tar', 'layout', 'manifest'];

function checkOf(e: ArchiveError): VerifyCheckName {
  if (e.check === 'gzip' || e.check === 'tar') return e.check;
  if (e.code === 'manifest_mismatch') return 'manifest';
  if (e.entry === 'metadata.json' || (e.code === 'not_keeper' && !e.entry)) return 'metadata';
  if (e.code === 'wrong_passphrase') return 'hmac';
  return 'layout';
}

/** The size, SHA-256 and HMAC checks; when they keep the structural pass from running, its checks say why. */
export interface IntegrityChecks {
  /** size, sha256, hmac */
  checks: VerifyCheck[];
  /** the first failure's code, null when all three passed */
  code: ArchiveErrorCode | null;
  /** the structural checks when they cannot run (wrong passphrase, wrong size), else null */
  blocked: VerifyCheck[] | null;
  encrypted: boolean;
}

/**
 * The integrity part of verifyArchive: one read of the file (size, SHA-256, HMAC against the sidecar or
 * `expected`). Cheap next to the structural pass, which a restore runs once, while it extracts.
 */
export async function verifyIntegrity(file: string, opts: { passphrase?: string | null; expected?: Expected; signal?: AbortSignal } = {}): Promise<IntegrityChecks> {
  const expected = await expectedFor(file, opts.expected);
  const integ = await checkIntegrity(file, { passphrase: opts.passphrase, expected, signal: opts.signal });
  const checks: VerifyCheck[] = [];
  const verdict = integ.verdict;
  const noSide = 'no recorded value to compare with (no sidecar or ledger row)';
  checks.push(verdict === 'truncated' || (verdict === 'corrupt' && !integ.sha256)
    ? { name: 'size', ok: false, error: integ.message }
    : { name: 'size', ok: true, ...(integ.checked.size ? {} : { note: noSide }) });
  const needsPass = verdict === 'wrong_passphrase' || verdict === 'passphrase_required';
  if (integ.sha256 === null) checks.push(notChecked('sha256', needsPass ? 'needs_passphrase' : 'size_wrong'));
  else if (verdict === 'corrupt' && integ.checked.sha256 && integ.sha256 !== expected.sha256) checks.push({ name: 'sha256', ok: false, error: integ.message });
  else checks.push({ name: 'sha256', ok: true, ...(integ.checked.sha256 ? {} : { note: noSide }) });
  if (!integ.encrypted) checks.push({ name: 'hmac', ok: true, note: 'not encrypted' });
  else if (verdict === 'wrong_passphrase' || verdict === 'passphrase_required') checks.push({ name: 'hmac', ok: false, error: integ.message });
  else if (verdict === 'corrupt' && integ.checked.mac) checks.push({ name: 'hmac', ok: false, error: integ.message });
  else checks.push({ name: 'hmac', ok: integ.sha256 !== null, ...(integ.checked.mac ? {} : { note: noSide }) });

  const code: ArchiveErrorCode | null = verdict === 'ok' ? null : verdictCode(verdict);
  const blocked = verdict === 'wrong_passphrase' || verdict === 'passphrase_required' || verdict === 'truncated' || integ.sha256 === null
    ? STRUCTURE.map((name) => notChecked(name, needsPass ? 'needs_passphrase' : verdict === 'truncated' || integ.sha256 === null ? 'size_wrong' : 'earlier_failure'))
    : null;
  return { checks, code, blocked, encrypted: integ.encrypted };
}

/**
 * The structural checks (metadata, gzip, tar, layout, manifest) after a full pass: all passed (null),
 * or the failure on its own check, those before it passed and those after it not checked.
 */
export function structureChecks(failure: ArchiveError | null): VerifyCheck[] {
  if (!failure) return STRUCTURE.map((name) => ({ name, ok: true }));
  const failed = checkOf(failure);
  const order: VerifyCheckName[] = ['gzip', 'tar', 'metadata', 'layout', 'manifest'];
  const at = order.indexOf(failed);
  return STRUCTURE.map((name): VerifyCheck => {
    const i = order.indexOf(name);
    if (name === failed) return { name, ok: false, error: failure.message };
    if (failed === 'hmac') return notChecked(name, 'needs_passphrase');
    if (i > at) return notChecked(name, 'earlier_failure');
    return { name, ok: true };
  });
}

/**
 * Every check, changing nothing: size, SHA-256 and HMAC against the sidecar (or `expected`), then gzip,
 * tar, layout and safety of every entry, every entry against manifest.json, the metadata schema.
 */
export async function verifyArchive(file: string, opts: { passphrase?: string | null; expected?: Expected; signal?: AbortSignal } = {}): Promise<VerifyResult> {
  const integ = await verifyIntegrity(file, opts);
  const checks = [...integ.checks];
  let code = integ.code;
  let metadata: ArchiveMetadata | null = null;
  let contentBytes: number | null = null;
  if (integ.blocked) checks.push(...integ.blocked);
  else {
    let keys: Keys | null = null;
    let failure: ArchiveError | null = null;
    try {
      keys = await keysFor(file, opts.passphrase);
      const r = await scanArchive(file, { keys, signal: opts.signal });
      metadata = r.metadata;
      contentBytes = r.fileBytes;
    } catch (e0) {
      let e = e0;
      try {
        await explain(e0, file, keys);
      } catch (e1) {
        e = e1;
      }
      failure = e instanceof ArchiveError ? e : new ArchiveError('io', errorMessage(e));
      code ??= failure.code;
    }
    checks.push(...structureChecks(failure));
  }
  const ok = checks.every((c) => c.ok);
  return { ok, code: ok ? null : (code ?? 'corrupt'), checks, metadata, content_bytes: ok ? contentBytes : null, encrypted: integ.encrypted };
}

// ---- extraction -------------------------------------------------------------------------------------

export interface ExtractOptions {
  passphrase?: string | null;
  /** defaults to the sidecar's values */
  expected?: Expected;
  /**
   * Skip the integrity pre-pass (size, SHA-256, HMAC) because the caller has just run verifyArchive or
   * checkIntegrity on this very file: saves one read of the whole file. Entries and the manifest are
   * still checked during extraction.
   */
  integrityChecked?: boolean;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  signal?: AbortSignal;
  /** free and total bytes of the filesystem holding `dir` (default statfs): tests stand in a small disk */
  diskSpace?: (dir: string) => { free: number; total: number };
}

/** What extraction leaves free at least: 5 % of the filesystem or 1 GiB, whichever is smaller. */
export const extractionMargin = (total: number) => Math.min(Math.floor(total * 0.05), 1024 ** 3);

const statDisk = (dir: string) => {
  const s = statfsSync(dir);
  return { free: Number(s.bavail) * Number(s.bsize), total: Number(s.blocks) * Number(s.bsize) };
};

/** How often the disk is asked while one file is written. */
const SPACE_CHECK_BYTES = 8 << 20;

/** Modes applied on disk: no setuid anywhere, no setgid on files (a restore must not mint privileges). */
const diskMode = (e: CheckedEntry) => (e.type === 'dir' ? e.mode & 0o3777 : e.mode & 0o1777);

class DiskSink implements EntrySink {
  private fd: number | null = null;
  private dirs: CheckedEntry[] = [];
  private made = new Set<string>();
  /** bytes written so far: counted, since the archive's own size claims are not believed */
  written = 0;
  private sinceCheck = 0;
  constructor(
    private dest: string,
    private disk: (dir: string) => { free: number; total: number } = statDisk,
  ) {}

  /** Stops before the filesystem would fall below the margin with `coming` more bytes. */
  private room(coming: number, rel?: string): void {
    const { free, total } = this.disk(this.dest);
    const margin = extractionMargin(total);
    if (free - coming < margin) {
      const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
      throw new ArchiveError(
        'insufficient_space',
        `extraction stopped after ${mb(this.written)}${rel ? ` at ${rel}` : ''}: ${mb(free)} free, and the filesystem keeps at least ${mb(margin)} free; free some space and try again`,
        rel,
      );
    }
  }

  private parent(rel: string): void {
    const d = dirname(rel);
    if (d === '.' || this.made.has(d)) return;
    this.parent(d);
    try {
      mkdirSync(join(this.dest, d), { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !lstatSync(join(this.dest, d)).isDirectory()) throw e;
    }
    this.made.add(d);
  }

  entry(e: CheckedEntry): void {
    const p = join(this.dest, e.rel);
    this.parent(e.rel);
    if (e.type === 'dir') {
      if (!this.made.has(e.rel)) {
        try {
          mkdirSync(p, { mode: 0o700 });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !lstatSync(p).isDirectory()) throw err;
        }
        this.made.add(e.rel);
      }
      this.dirs.push(e);
    } else if (e.type === 'symlink') {
      symlinkSync(e.linkname!, p);
      if (e.mtime) lutimesSync(p, e.mtime, e.mtime);
    } else {
      this.room(e.size, e.rel);
      this.sinceCheck = 0;
      // O_EXCL + O_NOFOLLOW: never through a link, never over something already there
      this.fd = openSync(p, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600);
    }
  }

  data(chunk: Buffer): void {
    this.sinceCheck += chunk.length;
    if (this.sinceCheck >= SPACE_CHECK_BYTES) {
      this.sinceCheck = 0;
      this.room(chunk.length);
    }
    this.written += chunk.length;
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd!, chunk, off, chunk.length - off);
  }

  end(e: CheckedEntry): void {
    if (e.type !== 'file' || this.fd === null) return;
    const fd = this.fd;
    this.fd = null;
    try {
      fchmodSync(fd, diskMode(e));
      if (e.mtime) futimesSync(fd, e.mtime, e.mtime);
    } finally {
      closeSync(fd);
    }
  }

  /** Directory modes and times last (children first), so a read-only dir did not block its contents. */
  finish(): void {
    for (let i = this.dirs.length - 1; i >= 0; i--) {
      const d = this.dirs[i];
      const p = join(this.dest, d.rel);
      chmodSync(p, diskMode(d));
      if (d.mtime) utimesSync(p, d.mtime, d.mtime);
    }
  }

  abort(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/**
 * Extracts into destDir (an empty staging dir the caller made) WITHOUT the top folder: destDir/metadata.json,
 * destDir/code/…, destDir/config/…, destDir/ssh/…, destDir/database.sql, destDir/manifest.json.
 * Checks integrity first (SHA-256/HMAC against `expected`, default the sidecar), then every entry against
 * the layout and manifest.json. Throws ArchiveError on any violation; the caller deletes destDir.
 */
export async function extractArchive(file: string, destDir: string, opts: ExtractOptions = {}): Promise<{ root: string; metadata: ArchiveMetadata; manifest: Manifest }> {
  if (!opts.integrityChecked) {
    const expected = await expectedFor(file, opts.expected);
    const integ = await checkIntegrity(file, { passphrase: opts.passphrase, expected, signal: opts.signal });
    if (integ.verdict !== 'ok') throw new ArchiveError(verdictCode(integ.verdict), integ.message);
  }
  let names: string[];
  try {
    names = readdirSync(destDir);
  } catch (e) {
    throw new ArchiveError('io', `staging dir ${destDir} is not usable: ${errorMessage(e)}`);
  }
  if (names.length > 0) throw new ArchiveError('io', `staging dir ${destDir} is not empty: extraction needs an empty dir`);
  const keys = await keysFor(file, opts.passphrase);
  const sink = new DiskSink(destDir, opts.diskSpace);
  try {
    const r = await scanArchive(file, { keys, sink, signal: opts.signal, onProgress: opts.onProgress, spillDir: dirname(destDir) });
    sink.finish();
    return {
      root: r.root,
      metadata: r.metadata,
      // parsed only for a caller that reads it, from the extracted (and checked) copy
      get manifest() {
        return parseManifest(readFileSync(join(destDir, ENTRY.manifest)));
      },
    };
  } catch (e) {
    sink.abort();
    return explain(e, file, keys);
  }
}
