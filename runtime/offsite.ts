// Off-site transports: the same few remote file operations over OpenSSH's sftp/ssh or over rclone,
// each spawned with an argument array. keeper never holds a remote's credentials: sftp gets a key
// file and a pinned known_hosts, rclone its own configuration file.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { OffsiteTarget, RcloneTarget, SftpTarget } from './config.ts';
import { run, safeEnv, type RunResult } from './exec.ts';
import { withKeeperTemp } from './temp.ts';

export interface RemoteEntry {
  name: string;
  size: number;
}

/** Why a remote operation failed, as a stable code (the message keeps the tool's own words). */
export type OffsiteErrorCode = 'unreachable' | 'host_key_refused' | 'auth_failed' | 'write_failed' | 'not_found' | 'tool_missing' | 'failed';

export class OffsiteError extends Error {
  constructor(
    readonly code: OffsiteErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'OffsiteError';
  }
}

export interface Transport {
  readonly target: OffsiteTarget;
  /** Copies `local` to `name` through `.<name>.partial` and a rename: a cut copy never holds the final name. */
  put(local: string, name: string, signal?: AbortSignal): Promise<void>;
  /** put() of several files in order (one connection where the tool allows it). */
  putAll(files: { local: string; name: string }[], signal?: AbortSignal): Promise<void>;
  /** Regular files directly in the target's dir (a missing dir is empty). */
  list(): Promise<RemoteEntry[]>;
  /** SHA-256 of remote files computed on the remote side; null when the target cannot (then: read back). */
  remoteSha256(names: string[]): Promise<Map<string, string> | null>;
  /**
   * Size and SHA-256 of remote files in one remote call where the target has a shell (sftp with
   * sha256sum); null when it cannot, and the caller lists and hashes instead.
   */
  remoteCheck(names: string[]): Promise<Map<string, { size: number; sha256: string }> | null>;
  get(name: string, local: string, signal?: AbortSignal): Promise<void>;
  remove(names: string[]): Promise<void>;
}

export const partialName = (name: string) => `.${name}.partial`;

const TIMEOUT_MS = 6 * 3600_000;

function classify(tool: string, r: RunResult): OffsiteError {
  const text = (r.stderr || r.stdout).trim();
  const why = text.split('\n').filter(Boolean).slice(-3).join(' | ') || `exit ${r.code ?? r.signal}`;
  const msg = `${tool}: ${why}`;
  if (/Host key verification failed|HOST IDENTIFICATION HAS CHANGED|host key .*(not known|mismatch)|knownhosts: key mismatch|key is unknown/i.test(text)) {
    return new OffsiteError('host_key_refused', `${msg} (the host key is not the pinned one in known_hosts; nothing was sent)`);
  }
  if (/Permission denied \(|Too many authentication failures|unable to authenticate|ssh: handshake failed/i.test(text)) return new OffsiteError('auth_failed', msg);
  if (/Connection refused|timed out|No route to host|Could not resolve|Network is unreachable|Connection closed by|Connection reset|couldn't connect|dial tcp/i.test(text)) {
    return new OffsiteError('unreachable', msg);
  }
  if (/No space left|quota|Disk quota|Failure|read-only file system|Couldn't write|failed to write|write error/i.test(text)) {
    return new OffsiteError('write_failed', `${msg} (remote disk full or not writable?)`);
  }
  if (/No such file|not found|doesn't exist|directory not found/i.test(text)) return new OffsiteError('not_found', msg);
  if (r.signal) return new OffsiteError('failed', `${tool} was stopped (${r.signal})`);
  return new OffsiteError('failed', msg);
}

async function exec(cmd: string, args: string[], opts: { input?: string; signal?: AbortSignal; timeoutMs?: number } = {}): Promise<RunResult> {
  try {
    return await run(cmd, args, { input: opts.input, signal: opts.signal, timeoutMs: opts.timeoutMs ?? TIMEOUT_MS, env: safeEnv() });
  } catch (e) {
    if ((e as { name?: string }).name === 'AbortError' || opts.signal?.aborted) throw new OffsiteError('failed', `${cmd}: cancelled`);
    throw new OffsiteError('tool_missing', `${(e as Error).message} (install openssh-client / rclone)`);
  }
}

/** SHA-256 of a local file. */
export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

// ── sftp ─────────────────────────────────────────────────────────────────────────────────────

/** Options every ssh/sftp call gets: no user config, keys only, host key pinned, never prompt. */
export function sshOptions(t: SftpTarget): string[] {
  const q = (p: string) => (/\s/.test(p) ? `"${p}"` : p);
  return [
    '-F', '/dev/null',
    '-i', t.key_file,
    '-o', 'IdentitiesOnly=yes',
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${q(t.known_hosts)}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'UpdateHostKeys=no',
    '-o', 'PasswordAuthentication=no',
    '-o', 'KbdInteractiveAuthentication=no',
    '-o', 'ConnectTimeout=10',
    '-o', 'ServerAliveInterval=15',
    '-o', 'ServerAliveCountMax=3',
    '-o', 'LogLevel=ERROR',
  ];
}

/** A word of an sftp batch line; the config schema keeps quotes and backslashes out of remote paths. */
function word(p: string): string {
  if (/["\\\n\r]/.test(p)) throw new OffsiteError('failed', `refusing a path with quotes, backslashes or newlines: ${JSON.stringify(p)}`);
  return `"${p}"`;
}

const SAFE_NAME = /^\.?[A-Za-z0-9][A-Za-z0-9._-]*$/;
function checkName(name: string): string {
  if (!SAFE_NAME.test(name)) throw new OffsiteError('failed', `not a remote file name keeper writes: ${JSON.stringify(name)}`);
  return name;
}

class SftpTransport implements Transport {
  constructor(readonly target: SftpTarget) {}

  private remote(name: string): string {
    return `${this.target.path.replace(/\/+$/, '')}/${checkName(name)}`;
  }

  private batch(lines: string[], signal?: AbortSignal): Promise<RunResult> {
    const t = this.target;
    const args = ['-b', '-', '-P', String(t.port), ...(t.bwlimit_kbps ? ['-l', String(t.bwlimit_kbps)] : []), ...sshOptions(t), `${t.user}@${t.host}`];
    return exec('sftp', args, { input: lines.join('\n') + '\n', signal });
  }

  private async batchOk(lines: string[], signal?: AbortSignal): Promise<RunResult> {
    const r = await this.batch(lines, signal);
    if (r.code !== 0) throw classify('sftp', r);
    return r;
  }

  put(local: string, name: string, signal?: AbortSignal): Promise<void> {
    return this.putAll([{ local, name }], signal);
  }

  async putAll(files: { local: string; name: string }[], signal?: AbortSignal): Promise<void> {
    const tmps = files.map((f) => this.remote(partialName(f.name)));
    // one sftp session for every file; "-" lets a line fail (the dir may exist, an old partial may not)
    const lines = [`-mkdir ${word(this.target.path)}`];
    files.forEach((f, i) => {
      lines.push(`-rm ${word(tmps[i])}`, `put ${word(f.local)} ${word(tmps[i])}`);
      // OpenSSH's sftp renames with posix-rename when the server offers it: atomic, replaces
      lines.push(`rename ${word(tmps[i])} ${word(this.remote(f.name))}`);
    });
    try {
      await this.batchOk(lines, signal);
    } catch (e) {
      // best effort: a full disk keeps nothing of a cut copy (the next attempt replaces it anyway)
      await this.batch(tmps.map((t) => `-rm ${word(t)}`)).catch(() => {});
      throw e;
    }
  }

  async list(): Promise<RemoteEntry[]> {
    const r = await this.batch([`ls -ln ${word(this.target.path)}`]);
    if (r.code !== 0) {
      const e = classify('sftp', r);
      if (e.code === 'not_found') return [];
      throw e;
    }
    const out: RemoteEntry[] = [];
    for (const line of r.stdout.split('\n')) {
      // -rw-------    1 0        0          1234 Nov 29 18:00 name
      const f = line.trim().split(/\s+/);
      if (f.length < 9 || !f[0].startsWith('-')) continue;
      const name = f[f.length - 1].split('/').pop()!;
      const size = Number(f[4]);
      if (Number.isFinite(size)) out.push({ name, size });
    }
    return out;
  }

  async remoteSha256(names: string[]): Promise<Map<string, string> | null> {
    const t = this.target;
    // ssh joins its arguments into one remote shell line: every word is single-quoted (safe alphabet)
    const cmd = ['sha256sum', '--', ...names.map((n) => `'${this.remote(n)}'`)].join(' ');
    const r = await exec('ssh', ['-p', String(t.port), ...sshOptions(t), `${t.user}@${t.host}`, cmd], { timeoutMs: 3600_000 });
    if (r.code !== 0) {
      const e = classify('ssh', r);
      if (e.code === 'unreachable' || e.code === 'host_key_refused' || e.code === 'auth_failed') throw e;
      // an sftp-only account (no shell, no sha256sum): the caller reads the file back instead
      if (r.code === 127 || /not found|not allowed|only sftp|This service allows sftp/i.test(r.stderr + r.stdout)) return null;
      throw e;
    }
    const m = new Map<string, string>();
    for (const line of r.stdout.split('\n')) {
      const x = /^([0-9a-f]{64})\s+\*?(.+)$/.exec(line.trim());
      if (x) m.set(x[2].split('/').pop()!, x[1]);
    }
    return m;
  }

  async remoteCheck(names: string[]): Promise<Map<string, { size: number; sha256: string }> | null> {
    const t = this.target;
    const q = names.map((n) => `'${this.remote(n)}'`).join(' ');
    // one connection: sizes, then hashes (a marker line between them)
    const cmd = `stat -c '%s %n' -- ${q} && echo --- && sha256sum -- ${q}`;
    const r = await exec('ssh', ['-p', String(t.port), ...sshOptions(t), `${t.user}@${t.host}`, cmd], { timeoutMs: 3600_000 });
    if (r.code !== 0) {
      const e = classify('ssh', r);
      if (e.code === 'unreachable' || e.code === 'host_key_refused' || e.code === 'auth_failed') throw e;
      return null;
    }
    const [sizes, hashes] = r.stdout.split('\n---\n');
    const out = new Map<string, { size: number; sha256: string }>();
    const size = new Map<string, number>();
    for (const line of (sizes ?? '').split('\n')) {
      const x = /^(\d+) (.+)$/.exec(line.trim());
      if (x) size.set(x[2].split('/').pop()!, Number(x[1]));
    }
    for (const line of (hashes ?? '').split('\n')) {
      const x = /^([0-9a-f]{64})\s+\*?(.+)$/.exec(line.trim());
      const n = x?.[2].split('/').pop();
      if (x && n && size.has(n)) out.set(n, { size: size.get(n)!, sha256: x[1] });
    }
    return names.every((n) => out.has(n)) ? out : null;
  }

  async get(name: string, local: string, signal?: AbortSignal): Promise<void> {
    await this.batchOk([`get ${word(this.remote(name))} ${word(local)}`], signal);
  }

  async remove(names: string[]): Promise<void> {
    if (!names.length) return;
    await this.batchOk(names.map((n) => `rm ${word(this.remote(n))}`));
  }
}

// ── rclone ───────────────────────────────────────────────────────────────────────────────────

class RcloneTransport implements Transport {
  constructor(readonly target: RcloneTarget) {}

  private base(): string {
    const r = this.target.remote;
    return r.endsWith(':') || r.endsWith('/') ? r : `${r}/`;
  }

  private remote(name: string): string {
    return `${this.base()}${checkName(name)}`;
  }

  private args(rest: string[]): string[] {
    const t = this.target;
    return ['--config', t.config_file, '--retries', '1', '--low-level-retries', '2', '--contimeout', '10s', '--timeout', '120s', ...(t.bwlimit_kbps ? ['--bwlimit', `${Math.max(1, Math.floor(t.bwlimit_kbps / 8))}k`] : []), ...rest];
  }

  private async ok(rest: string[], signal?: AbortSignal): Promise<RunResult> {
    const r = await exec('rclone', this.args(rest), { signal });
    if (r.code !== 0) throw classify('rclone', r);
    return r;
  }

  async putAll(files: { local: string; name: string }[], signal?: AbortSignal): Promise<void> {
    for (const f of files) await this.put(f.local, f.name, signal);
  }

  async put(local: string, name: string, signal?: AbortSignal): Promise<void> {
    const tmp = this.remote(partialName(name));
    try {
      await this.ok(['copyto', '--ignore-times', local, tmp], signal);
      await this.ok(['moveto', tmp, this.remote(name)], signal);
    } catch (e) {
      await exec('rclone', this.args(['deletefile', tmp])).catch(() => {});
      throw e;
    }
  }

  async list(): Promise<RemoteEntry[]> {
    const r = await exec('rclone', this.args(['lsjson', '--files-only', '--no-mimetype', this.base()]));
    if (r.code !== 0) {
      const e = classify('rclone', r);
      if (e.code === 'not_found') return [];
      throw e;
    }
    const items = JSON.parse(r.stdout || '[]') as { Name: string; Size: number; IsDir: boolean }[];
    return items.filter((i) => !i.IsDir).map((i) => ({ name: i.Name, size: i.Size }));
  }

  async remoteSha256(names: string[]): Promise<Map<string, string> | null> {
    const r = await exec('rclone', this.args(['hashsum', 'sha256', this.base(), '--max-depth', '1', ...names.flatMap((n) => ['--include', `/${checkName(n)}`])]), { timeoutMs: 3600_000 });
    if (r.code !== 0) {
      if (/hash type not supported|unsupported hash/i.test(r.stderr)) return null;
      throw classify('rclone', r);
    }
    const m = new Map<string, string>();
    for (const line of r.stdout.split('\n')) {
      const x = /^([0-9a-f]{64})\s+(.+)$/.exec(line.trim());
      if (x) m.set(x[2], x[1]);
    }
    // a backend without SHA-256 prints empty hashes rather than failing
    return names.every((n) => m.has(n)) ? m : null;
  }

  async remoteCheck(): Promise<null> {
    // rclone has no single call for both: the caller lists, then asks for hashes
    return null;
  }

  async get(name: string, local: string, signal?: AbortSignal): Promise<void> {
    await this.ok(['copyto', '--ignore-times', this.remote(name), local], signal);
  }

  async remove(names: string[]): Promise<void> {
    for (const n of names) await this.ok(['deletefile', this.remote(n)]);
  }
}

export function transportFor(t: OffsiteTarget): Transport {
  return t.kind === 'sftp' ? new SftpTransport(t) : new RcloneTransport(t);
}

/** Where a target is, for messages and the UI: never a key, a password or a config's content. */
export function describeTarget(t: OffsiteTarget): string {
  return t.kind === 'sftp' ? `sftp://${t.user}@${t.host}:${t.port}${t.path}` : `rclone ${t.remote}`;
}

/**
 * SHA-256 of remote files: computed remotely when the target can, else each file is read back into
 * keeper's temp dir and hashed here.
 */
export async function remoteHashes(tr: Transport, names: string[], stateDir: string, signal?: AbortSignal): Promise<{ hashes: Map<string, string>; method: 'remote' | 'read_back' }> {
  const remote = await tr.remoteSha256(names);
  if (remote && names.every((n) => remote.has(n))) return { hashes: remote, method: 'remote' };
  return withKeeperTemp(
    'offsite-readback',
    async (dir) => {
      const m = new Map<string, string>();
      for (const n of names) {
        const f = join(dir, n.replace(/^\./, '_'));
        await tr.get(n, f, signal);
        m.set(n, await sha256File(f));
      }
      return { hashes: m, method: 'read_back' as const };
    },
    stateDir,
  );
}
