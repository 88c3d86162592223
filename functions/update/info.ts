// What the update pages show: the installed version and what the remote-tracking ref holds. Reads
// only local refs (a `git fetch` is the check task's job), so it is fast and works offline.
import type { KeeperConfig } from '../../runtime/config.ts';
import * as git from '../../runtime/git.ts';
import { readEnv } from '../../runtime/install.ts';
import { serverVersion } from '../../runtime/mariadb.ts';
import { borgVersion, nodeVersion, phpVersion } from '../../runtime/versions.ts';
import type { Ledger } from '../../state/ledger.ts';
import { getLastCheck, lastSucceededUpdate } from '../../state/updates.ts';

export interface UpdateStatus {
  installed_version: string | null;
  current_commit: string;
  current_short: string;
  branch: string | null;
  remote: string;
  tracked_branch: string;
  latest_commit: string | null;
  latest_version: string | null;
  latest_subject: string | null;
  latest_date: string | null;
  commits_behind: number;
  /** local commits the remote does not have: an update would not be a fast-forward */
  commits_ahead: number;
  /** newer commits exist and HEAD can be fast-forwarded to them */
  available: boolean;
  /** both sides have commits the other lacks: no update until that is resolved by hand */
  diverged: boolean;
  /** uncommitted changes would make an update refuse */
  work_tree_clean: boolean;
  dirty_files: string[];
  last_check: string | null;
  last_check_ok: boolean | null;
  last_check_error: string | null;
  last_update: string | null;
  versions: { php: string | null; node: string | null; borg: string | null; mariadb: string | null };
}

async function safe<T>(f: () => Promise<T>): Promise<T | null> {
  try {
    return await f();
  } catch {
    return null;
  }
}

export async function updateStatus(config: KeeperConfig, ledger: Ledger): Promise<UpdateStatus> {
  const dir = config.paths.code;
  const { remote, branch: tracked } = config.git;
  const ref = git.remoteRef(remote, tracked);
  const head = await git.headCommit(dir);
  const [installed, branch, latest, dirty] = await Promise.all([
    git.describe(dir),
    git.currentBranch(dir),
    git.resolveCommit(dir, ref),
    git.dirtyFiles(dir).catch(() => [] as string[]),
  ]);
  let behind = 0;
  let ahead = 0;
  let latestVersion: string | null = null;
  let subject: string | null = null;
  let date: string | null = null;
  if (latest) {
    [behind, ahead, latestVersion, subject, date] = await Promise.all([
      git.countCommits(dir, head, latest),
      git.countCommits(dir, latest, head),
      git.describe(dir, latest),
      git.commitSubject(dir, latest),
      git.commitDate(dir, latest),
    ]);
  }
  const [php, node, borg, mariadb] = await Promise.all([
    phpVersion(),
    nodeVersion(),
    borgVersion(),
    safe(() => serverVersion(readEnv(config))),
  ]);
  const check = getLastCheck(ledger);
  const last = lastSucceededUpdate(ledger);
  return {
    installed_version: installed,
    current_commit: head,
    current_short: head.slice(0, 7),
    branch,
    remote,
    tracked_branch: tracked,
    latest_commit: latest,
    latest_version: latestVersion,
    latest_subject: subject,
    latest_date: date,
    commits_behind: behind,
    commits_ahead: ahead,
    available: behind > 0 && ahead === 0,
    diverged: behind > 0 && ahead > 0,
    work_tree_clean: dirty.length === 0,
    dirty_files: dirty.slice(0, 50),
    last_check: check?.at ?? null,
    last_check_ok: check ? check.ok : null,
    last_check_error: check?.error ?? null,
    last_update: last?.finished_at ?? null,
    versions: { php, node, borg, mariadb },
  };
}

export const CHANGELOG_MAX = 200;

export interface Changelog {
  from: string;
  to: string | null;
  total: number;
  limit: number;
  offset: number;
  commits: git.Commit[];
}

/** Commits HEAD..<remote>/<branch>, newest first, capped and paged. */
export async function changelog(config: KeeperConfig, opts: { limit: number; offset: number }): Promise<Changelog> {
  const dir = config.paths.code;
  const limit = Math.min(Math.max(1, opts.limit), CHANGELOG_MAX);
  const offset = Math.max(0, opts.offset);
  const head = await git.headCommit(dir);
  const latest = await git.resolveCommit(dir, git.remoteRef(config.git.remote, config.git.branch));
  if (!latest) return { from: head, to: null, total: 0, limit, offset, commits: [] };
  const [total, commits] = await Promise.all([
    git.countCommits(dir, head, latest),
    git.log(dir, head, latest, { limit, offset }),
  ]);
  return { from: head, to: latest, total, limit, offset, commits };
}
