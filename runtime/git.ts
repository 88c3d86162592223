// git on the protected code dir, always with argument arrays and `--end-of-options` where git takes
// it, so no ref or path can ever be read as an option. Refs from users are validated before use.
import { run, safeEnv, type RunOptions, type RunResult } from './exec.ts';

export class GitError extends Error {
  constructor(
    message: string,
    readonly code: string = 'git_failed',
  ) {
    super(message);
    this.name = 'GitError';
  }
}

/** git in dir; safe.directory because the helper may run as root on a tree owned by phpborg. */
export function git(dir: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return run('git', ['-c', `safe.directory=${dir}`, '-C', dir, ...args], {
    timeoutMs: 300_000,
    ...opts,
    // never prompt for credentials, stable (untranslated) messages
    env: safeEnv({ GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C', GIT_OPTIONAL_LOCKS: '0' }),
  });
}

async function gitOk(dir: string, args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await git(dir, args, opts);
  if (r.code !== 0) {
    const why = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ');
    throw new GitError(`git ${args[0]} failed (exit ${r.code ?? r.signal}): ${why}`);
  }
  return r.stdout;
}

/**
 * A ref a user may name: a branch, tag, remote-tracking ref or (abbreviated) hash. No leading dash,
 * no `..`, no reflog syntax, no whitespace or shell characters.
 */
export function isSafeRef(ref: string): boolean {
  return (
    /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/.test(ref) &&
    !ref.includes('..') &&
    !ref.includes('//') &&
    !ref.endsWith('/') &&
    !ref.endsWith('.lock') &&
    !ref.endsWith('.')
  );
}

export function assertSafeRef(ref: string): void {
  if (!isSafeRef(ref)) {
    throw new GitError(
      `"${ref}" is not a valid git ref: use a branch, tag or commit hash (letters, digits, . _ / -)`,
      'invalid_ref',
    );
  }
}

/** `git describe --tags --always`, null when it fails. */
export async function describe(dir: string, rev = 'HEAD'): Promise<string | null> {
  const r = await git(dir, ['describe', '--tags', '--always', rev]);
  return r.code === 0 ? r.stdout.trim() || null : null;
}

/** Full hash of the commit a ref names; null when it names no commit. */
export async function resolveCommit(dir: string, ref: string): Promise<string | null> {
  assertSafeRef(ref);
  const r = await git(dir, ['rev-parse', '--verify', '--quiet', '--end-of-options', `${ref}^{commit}`]);
  const sha = r.stdout.trim();
  return r.code === 0 && /^[0-9a-f]{40,64}$/.test(sha) ? sha : null;
}

export async function headCommit(dir: string): Promise<string> {
  const sha = (await gitOk(dir, ['rev-parse', '--verify', 'HEAD'])).trim();
  if (!/^[0-9a-f]{40,64}$/.test(sha)) throw new GitError(`unexpected HEAD: ${sha}`);
  return sha;
}

/** The checked-out branch, null on a detached HEAD. */
export async function currentBranch(dir: string): Promise<string | null> {
  const r = await git(dir, ['symbolic-ref', '--quiet', '--short', 'HEAD']);
  return r.code === 0 ? r.stdout.trim() || null : null;
}

export function remoteRef(remote: string, branch: string): string {
  return `refs/remotes/${remote}/${branch}`;
}

/** Fetches the configured branch (and tags) into its remote-tracking ref. */
export async function fetch(
  dir: string,
  remote: string,
  branch: string,
  opts: { signal?: AbortSignal; onLine?: RunOptions['onLine'] } = {},
): Promise<void> {
  assertSafeRef(remote);
  assertSafeRef(branch);
  await gitOk(
    dir,
    ['fetch', '--tags', '--no-write-fetch-head', '--end-of-options', remote, `+refs/heads/${branch}:${remoteRef(remote, branch)}`],
    { signal: opts.signal, onLine: opts.onLine },
  );
}

/** Commits reachable from `to` and not from `from`. */
export async function countCommits(dir: string, from: string, to: string): Promise<number> {
  const out = await gitOk(dir, ['rev-list', '--count', `${from}..${to}`, '--']);
  return Number(out.trim());
}

/** Whether `ancestor` is an ancestor of (or equal to) `descendant`. */
export async function isAncestor(dir: string, ancestor: string, descendant: string): Promise<boolean> {
  const r = await git(dir, ['merge-base', '--is-ancestor', '--end-of-options', ancestor, descendant]);
  if (r.code === 0) return true;
  if (r.code === 1) return false;
  throw new GitError(`git merge-base failed: ${r.stderr.trim()}`);
}

/** Moves the checked-out branch forward to `sha`; refuses anything but a fast-forward. */
export async function mergeFastForward(
  dir: string,
  sha: string,
  opts: { onLine?: RunOptions['onLine'] } = {},
): Promise<void> {
  if (!/^[0-9a-f]{40,64}$/.test(sha)) throw new GitError(`not a full commit hash: ${sha}`, 'invalid_ref');
  await gitOk(dir, ['merge', '--ff-only', '--no-edit', '--end-of-options', sha], { onLine: opts.onLine });
}

export interface Commit {
  hash: string;
  short_hash: string;
  author: string;
  author_email: string;
  /** author date, ISO 8601 */
  date: string;
  subject: string;
  body: string;
}

// One field per NUL, commits separated by NUL too (-z): a message can never contain NUL.
const LOG_FORMAT = ['%H', '%h', '%an', '%ae', '%aI', '%s', '%b'];

export function parseLog(out: string): Commit[] {
  if (!out) return [];
  const fields = out.split('\0');
  const n = LOG_FORMAT.length;
  const commits: Commit[] = [];
  for (let i = 0; i + n <= fields.length; i += n) {
    const [hash, short_hash, author, author_email, date, subject, body] = fields.slice(i, i + n);
    commits.push({
      hash: hash.replace(/^\n+/, ''),
      short_hash,
      author,
      author_email,
      date,
      subject,
      body: body.replace(/\s+$/, ''),
    });
  }
  return commits;
}

/** Commits in from..to, newest first, paged. */
export async function log(
  dir: string,
  from: string,
  to: string,
  opts: { limit?: number; offset?: number } = {},
): Promise<Commit[]> {
  const args = ['log', '-z', `--format=${LOG_FORMAT.join('%x00')}`, '--no-color'];
  if (opts.limit !== undefined) args.push(`--max-count=${opts.limit}`);
  if (opts.offset) args.push(`--skip=${opts.offset}`);
  args.push(`${from}..${to}`, '--');
  return parseLog(await gitOk(dir, args));
}

/** Paths that differ in the work tree or index, untracked included (ignored files excluded). */
export async function dirtyFiles(dir: string): Promise<string[]> {
  const out = await gitOk(dir, ['status', '--porcelain=v1', '-z', '--untracked-files=all']);
  const files: string[] = [];
  const parts = out.split('\0');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p.length < 4) continue;
    const xy = p.slice(0, 2);
    files.push(p.slice(3));
    // renames and copies carry the source path as the next field
    if (xy[0] === 'R' || xy[0] === 'C') i++;
  }
  return files;
}

/** Tracked files with uncommitted edits (work tree or index), untracked files left out. */
export async function trackedEdits(dir: string): Promise<string[]> {
  const out = await gitOk(dir, ['status', '--porcelain=v1', '-z', '--untracked-files=no']);
  const files: string[] = [];
  const parts = out.split('\0');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p.length < 4) continue;
    files.push(p.slice(3));
    if (p[0] === 'R' || p[0] === 'C') i++;
  }
  return files.sort();
}

/** A file's text at a commit (commit is a full hash); null when the commit does not hold it. */
export async function fileAtCommit(dir: string, commit: string, path: string): Promise<string | null> {
  if (!/^[0-9a-f]{7,64}$/.test(commit)) throw new GitError(`not a commit hash: ${commit}`);
  const r = await git(dir, ['cat-file', 'blob', `${commit}:${path}`]);
  return r.code === 0 ? r.stdout : null;
}

/** Paths changed between two commits. */
export async function changedFiles(dir: string, from: string, to: string): Promise<string[]> {
  const out = await gitOk(dir, ['diff', '--name-only', '-z', '--no-renames', from, to, '--']);
  return out.split('\0').filter(Boolean);
}

/** Files under a directory at a commit (names relative to the repository root). */
export async function filesAt(dir: string, commit: string, path: string): Promise<string[]> {
  const out = await gitOk(dir, ['ls-tree', '-z', '--name-only', '--full-tree', commit, '--', path.endsWith('/') ? path : `${path}/`]);
  return out.split('\0').filter(Boolean);
}

/** Last commit time of a ref (ISO 8601), null when unknown. */
export async function commitDate(dir: string, rev: string): Promise<string | null> {
  const r = await git(dir, ['log', '-1', '--format=%cI', rev, '--']);
  return r.code === 0 ? r.stdout.trim() || null : null;
}

/** Subject of a commit. */
export async function commitSubject(dir: string, rev: string): Promise<string | null> {
  const r = await git(dir, ['log', '-1', '--format=%s', rev, '--']);
  return r.code === 0 ? r.stdout.trim() || null : null;
}
