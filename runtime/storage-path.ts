// Where keeper may keep its archives. The storage path comes from a setting anyone with the admin
// token (or phpBorg's own settings row) can change, and the backup running as root creates and
// tightens it: a system tree, a shared directory or one of the install's own trees must never be
// taken over. phpBorg seeds `/opt/backups`, its Borg pool (shared, 0775, holding the repositories):
// a directory keeper did not create and that is not 0700 is only ever used as the parent of
// keeper's own subfolder, whose mode alone keeper sets.
import { lstatSync, realpathSync } from 'node:fs';
import { chmod, mkdir, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize, resolve } from 'node:path';
import type { KeeperConfig } from './config.ts';

/** keeper's own folder inside a shared directory (the original design's name). */
export const OWN_SUBDIR = 'phpborg-self-backups';

/** Trees that hold the system: nothing of keeper's belongs anywhere in them. */
const SYSTEM_TREES = ['/etc', '/usr', '/bin', '/sbin', '/boot', '/dev', '/proc', '/sys', '/run', '/var/run', '/var/lock', '/snap'];
/** Shared parents: a subfolder is fine, the directory itself is everyone's. */
const SHARED_DIRS = ['/', '/var', '/var/lib', '/var/tmp', '/var/cache', '/var/log', '/var/spool', '/var/mail', '/tmp', '/root', '/home', '/opt', '/srv', '/mnt', '/media', '/usr/local'];

const inside = (p: string, tree: string) => p === tree || p.startsWith(tree === '/' ? '/' : `${tree}/`);

/** The path with every existing component's symlinks resolved (the rest appended as written). */
function realish(p: string): string {
  let head = p;
  const rest: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(head), ...rest.reverse());
    } catch {
      if (dirname(head) === head) return p;
      rest.push(basename(head));
      head = dirname(head);
    }
  }
}

/** Why `path` cannot be keeper's storage path, or null when it can. */
export function storagePathProblem(config: KeeperConfig, path: string): string | null {
  if (!isAbsolute(path) || path.split('/').includes('..')) return 'expected an absolute path without ".."';
  const literal = normalize(path).replace(/(.)\/+$/, '$1');
  const own: [string, string][] = [
    [config.paths.code, "phpBorg's code dir (each backup would contain the previous ones and a restore would delete them)"],
    [config.paths.ssh, "phpBorg's SSH dir"],
    [config.paths.state, "keeper's state dir"],
    [config.paths.sudoers, 'the sudoers dir'],
    [config.paths.systemd, 'the systemd units dir'],
    [config.paths.etc, "phpBorg's configuration dir"],
  ];
  for (const p of new Set([literal, realish(literal)])) {
    if (/^\/lib[^/]*(\/|$)/.test(p)) return `${p} is inside a system tree (/lib*)`;
    const sys = SYSTEM_TREES.find((t) => inside(p, t));
    if (sys) return `${p} is inside the system tree ${sys}`;
    if (SHARED_DIRS.includes(p)) return `${p} is a system or shared directory itself: use a subfolder of it`;
    for (const [tree, what] of own) {
      const t = resolve(tree);
      for (const cand of new Set([t, realish(t)])) {
        if (inside(p, cand)) return `${p} is inside ${what} (${tree})`;
        if (inside(cand, p)) return `${p} contains ${what} (${tree})`;
      }
    }
  }
  return null;
}

/**
 * The directory keeper actually writes into for a storage path: the path itself when it does not
 * exist yet (keeper creates it 0700) or is already a 0700 directory; otherwise its OWN_SUBDIR —
 * a directory keeper did not make is a parent only and its mode and owner are never touched.
 */
export function ownStorageDir(path: string): string {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return path;
  }
  if (st.isDirectory() && (st.mode & 0o777) === 0o700) return path;
  return basename(path) === OWN_SUBDIR && st.isDirectory() ? path : join(path, OWN_SUBDIR);
}

/**
 * The check the settings apply to a new backup_storage_path: throws the reason for a refused path,
 * returns where keeper will really write (its own subfolder of a shared directory).
 */
export function storagePolicy(config: KeeperConfig): (path: string) => string {
  return (path) => {
    const problem = storagePathProblem(config, path);
    if (problem) throw new Error(problem);
    const dir = ownStorageDir(normalize(path).replace(/(.)\/+$/, '$1'));
    const again = dir === path ? null : storagePathProblem(config, dir);
    if (again) throw new Error(again);
    return dir;
  };
}

/**
 * Makes keeper's storage dir for `path` exist and returns it. Refuses a forbidden path before
 * anything is created; only the directories this call creates get mode 0700 (umask aside).
 */
export async function ensureOwnStorageDir(config: KeeperConfig, path: string): Promise<string> {
  const problem = storagePathProblem(config, path);
  if (problem) throw new Error(`refused: ${problem} (backup_storage_path)`);
  const dir = ownStorageDir(path);
  if (dir !== path) {
    const again = storagePathProblem(config, dir);
    if (again) throw new Error(`refused: ${again} (backup_storage_path)`);
  }
  const first = await mkdir(dir, { recursive: true, mode: 0o700 });
  if (first !== undefined) {
    // every directory from `first` down to `dir` is new: keeper's own
    for (let d = dir; ; d = dirname(d)) {
      await chmod(d, 0o700);
      if (d === first || dirname(d) === d) break;
    }
  }
  const st = await stat(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  return dir;
}
